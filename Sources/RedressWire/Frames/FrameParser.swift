import GRPCCore
public import NIOCore

/// Turns the octets a peer sends into a preface and frames, checking each frame against the
/// limits before its payload is buffered (docs/PROTOCOL.md §4).
///
/// Pure protocol logic with no I/O, so it is tested directly and on `EmbeddedChannel` through
/// ``FrameDecoder``. A frame whose header is valid but whose payload is malformed for one stream is
/// consumed before the stream-scoped ``WireError`` is thrown, so parsing can go on after it.
public struct FrameParser: Sendable {
  /// What the parser yields.
  public enum Element: Hashable, Sendable {
    /// The peer's eight-octet preface.
    case preface(Preface)
    /// A frame.
    case frame(Frame)
  }

  private var buffer: ByteBuffer
  private var expectingPreface: Bool
  /// Frames longer than this are rejected from their header with `FRAME_SIZE_ERROR`.
  public var maxFrameSize: Int
  /// Metadata blocks longer than this are rejected with a stream `METADATA_TOO_LARGE`.
  public var maxMetadataSize: Int

  /// A parser that first expects a preface (or, for a client, a `GOAWAY` refusing its own).
  public init(
    expectingPreface: Bool = true,
    maxFrameSize: Int = PeerSettings.minimumMaxFrameSize,
    maxMetadataSize: Int = 16_384
  ) {
    self.buffer = ByteBuffer()
    self.expectingPreface = expectingPreface
    self.maxFrameSize = maxFrameSize
    self.maxMetadataSize = maxMetadataSize
  }

  /// The number of octets received but not yet parsed.
  public var bufferedBytes: Int { self.buffer.readableBytes }

  /// Adds received octets.
  public mutating func append(_ bytes: ByteBuffer) {
    if self.buffer.readableBytes == 0 {
      // The common case: everything before was parsed, so take the read buffer as it is and let
      // the frames be slices of it, with no copy.
      self.buffer = bytes
    } else {
      var bytes = bytes
      self.buffer.writeBuffer(&bytes)
    }
  }

  /// Parses the next element, or returns `nil` if more octets are needed.
  public mutating func next() throws(WireError) -> Element? {
    if self.buffer.readableBytes == 0 {
      // Everything received is parsed: let go of the read buffer (frames already handed on keep
      // their own slices). NIOSSL reuses one plaintext buffer for every read; holding on to it made
      // each read copy-on-write a fresh 32 KiB one.
      self.buffer = ByteBuffer()
      return nil
    }
    if self.expectingPreface {
      guard let first = self.buffer.getInteger(at: self.buffer.readerIndex, as: UInt8.self) else {
        return nil
      }
      // A server that refuses a preface answers with a GOAWAY instead of its own; a frame header
      // of any frame shorter than 64 KiB starts with a zero octet, the magic never does. Nothing
      // else may stand in for a preface: an HTTP/2 or HTTP/1 client must get PROTOCOL_ERROR, not
      // whatever its first octets happen to look like as a frame header.
      if first != Preface.magic[0] {
        guard let header = self.peekHeader() else { return nil }
        guard header.type == FrameType.goAway.rawValue else {
          throw WireError(.protocolError, "connection preface is not 'RDRS\\r\\n': not a Redress peer")
        }
        self.expectingPreface = false
        return try self.nextFrame().map { .frame($0) }
      }
      guard self.buffer.readableBytes >= Preface.length else {
        let available = self.buffer.readableBytesView
        if !Preface.magic.starts(with: available.prefix(Preface.magic.count)) {
          throw WireError(.protocolError, "connection preface is not 'RDRS\\r\\n': not a Redress peer")
        }
        return nil
      }
      // Eight octets are here (checked above); no read below can come up short.
      guard let magic = self.buffer.readBytes(length: Preface.magic.count), magic == Preface.magic,
        let minimum = self.buffer.readInteger(as: UInt8.self),
        let maximum = self.buffer.readInteger(as: UInt8.self)
      else {
        throw WireError(.protocolError, "connection preface is not 'RDRS\\r\\n': not a Redress peer")
      }
      self.expectingPreface = false
      return .preface(Preface(minimumVersion: minimum, maximumVersion: maximum))
    }
    return try self.nextFrame().map { .frame($0) }
  }

  /// Parses the next frame, or returns `nil` if more octets are needed.
  private mutating func nextFrame() throws(WireError) -> Frame? {
    guard let header = self.peekHeader() else { return nil }
    // Limits are checked from the header alone, before any of the payload is waited for.
    guard header.length <= self.maxFrameSize else {
      throw WireError(
        .frameSizeError,
        "frame of \(header.length) octets exceeds MAX_FRAME_SIZE \(self.maxFrameSize)"
      )
    }
    guard let type = FrameType(rawValue: header.type) else {
      throw WireError(.protocolError, "unknown frame type 0x\(String(header.type, radix: 16))")
    }
    try Self.checkStreamAndLength(header, type)
    guard self.buffer.readableBytes >= FrameHeader.length + header.length else { return nil }
    self.buffer.moveReaderIndex(forwardBy: FrameHeader.length)
    guard var payload = self.buffer.readSlice(length: header.length) else { return nil }
    return try self.decodePayload(header, type, &payload)
  }

  private func peekHeader() -> FrameHeader? {
    guard self.buffer.readableBytes >= FrameHeader.length else { return nil }
    let index = self.buffer.readerIndex
    guard let high = self.buffer.getInteger(at: index, as: UInt8.self),
      let low = self.buffer.getInteger(at: index + 1, as: UInt16.self),
      let type = self.buffer.getInteger(at: index + 3, as: UInt8.self),
      let flags = self.buffer.getInteger(at: index + 4, as: UInt8.self),
      let stream = self.buffer.getInteger(at: index + 5, as: UInt32.self)
    else { return nil }
    return FrameHeader(
      length: Int(high) << 16 | Int(low),
      type: type,
      flags: FrameFlags(rawValue: flags),
      streamID: stream & FrameHeader.maxStreamID
    )
  }

  private static func checkStreamAndLength(_ header: FrameHeader, _ type: FrameType) throws(WireError) {
    switch type {
    case .settings, .ping, .goAway:
      guard header.streamID == 0 else {
        throw WireError(.protocolError, "\(type) frame on stream \(header.streamID): it belongs on stream 0")
      }
    case .headers, .message, .trailers, .resetStream:
      guard header.streamID != 0 else {
        throw WireError(.protocolError, "\(type) frame on stream 0: it needs a stream")
      }
    case .windowUpdate:
      break
    }
    switch type {
    case .settings:
      if header.flags.contains(.ack) {
        guard header.length == 0 else {
          throw WireError(.frameSizeError, "SETTINGS ACK carries \(header.length) octets; it must be empty")
        }
      } else {
        guard header.length % 6 == 0 else {
          throw WireError(.frameSizeError, "SETTINGS payload of \(header.length) octets is not a multiple of 6")
        }
      }
    case .ping:
      guard header.length == 8 else {
        throw WireError(.frameSizeError, "PING payload is \(header.length) octets; it must be 8")
      }
    case .resetStream, .windowUpdate:
      guard header.length == 4 else {
        throw WireError(.frameSizeError, "\(type) payload is \(header.length) octets; it must be 4")
      }
    case .goAway:
      guard header.length >= 8 else {
        throw WireError(.frameSizeError, "GOAWAY payload is \(header.length) octets; it needs at least 8")
      }
    case .headers:
      guard header.length >= 4 else {
        throw WireError(.frameSizeError, "HEADERS payload is \(header.length) octets; it needs at least 4")
      }
    case .trailers:
      guard header.length >= 5 else {
        throw WireError(.frameSizeError, "TRAILERS payload is \(header.length) octets; it needs at least 5")
      }
    case .message:
      break
    }
  }

  private func decodePayload(
    _ header: FrameHeader,
    _ type: FrameType,
    _ payload: inout ByteBuffer
  ) throws(WireError) -> Frame {
    let stream = header.streamID
    switch type {
    case .settings:
      if header.flags.contains(.ack) { return .settingsAck }
      var settings: [Setting] = []
      settings.reserveCapacity(header.length / 6)
      while let id = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
        settings.append(Setting(SettingID(rawValue: id), value))
      }
      return .settings(settings)

    case .headers:
      // checkStreamAndLength guaranteed the fixed part of every frame; a short one still answers, not traps.
      guard let rawPathLength = payload.readInteger(as: UInt16.self) else { throw Self.short(header, type) }
      let pathLength = Int(rawPathLength)
      guard let pathSlice = payload.readSlice(length: pathLength) else {
        throw WireError(.protocolError, "HEADERS path length \(pathLength) runs past the frame", stream: stream)
      }
      guard let path = pathSlice.readableUTF8() else {
        throw WireError(.protocolError, "HEADERS path is not valid UTF-8", stream: stream)
      }
      guard path.isEmpty || Self.isMethodPath(path) else {
        throw WireError(.protocolError, "HEADERS path is not empty or '/service/method'", stream: stream)
      }
      guard payload.readableBytes <= self.maxMetadataSize else {
        throw WireError(
          .metadataTooLarge,
          "metadata block of \(payload.readableBytes) octets exceeds MAX_METADATA_SIZE \(self.maxMetadataSize)",
          stream: stream
        )
      }
      let metadata = try MetadataCodec.decode(&payload, stream: stream)
      return .headers(streamID: stream, path: path, metadata: metadata, endStream: header.flags.contains(.endStream))

    case .message:
      return .message(streamID: stream, fragment: payload, flags: header.flags)

    case .trailers:
      // At least five octets (checkStreamAndLength).
      guard let rawCode = payload.readInteger(as: UInt8.self), let rawLength = payload.readInteger(as: UInt16.self) else {
        throw Self.short(header, type)
      }
      let messageLength = Int(rawLength)
      guard let code = Status.Code(rawValue: Int(rawCode)) else {
        throw WireError(.protocolError, "TRAILERS status code \(rawCode) is not a gRPC status code (0-16)", stream: stream)
      }
      guard payload.readableBytes <= self.maxMetadataSize else {
        throw WireError(
          .metadataTooLarge,
          "trailers of \(payload.readableBytes) octets exceed MAX_METADATA_SIZE \(self.maxMetadataSize)",
          stream: stream
        )
      }
      guard let messageSlice = payload.readSlice(length: messageLength) else {
        throw WireError(.protocolError, "TRAILERS status message length \(messageLength) runs past the frame", stream: stream)
      }
      guard let message = messageSlice.readableUTF8() else {
        throw WireError(.protocolError, "TRAILERS status message is not valid UTF-8", stream: stream)
      }
      let metadata = try MetadataCodec.decode(&payload, stream: stream)
      return .trailers(streamID: stream, status: Status(code: code, message: message), metadata: metadata)

    case .resetStream:
      guard let code = payload.readInteger(as: UInt32.self) else { throw Self.short(header, type) }
      return .resetStream(streamID: stream, code: WireErrorCode(rawValue: code))

    case .ping:
      guard let data = payload.readInteger(as: UInt64.self) else { throw Self.short(header, type) }
      return .ping(data: data, ack: header.flags.contains(.ack))

    case .goAway:
      guard let rawLast = payload.readInteger(as: UInt32.self), let rawCode = payload.readInteger(as: UInt32.self) else {
        throw Self.short(header, type)
      }
      let last = rawLast & FrameHeader.maxStreamID
      let code = WireErrorCode(rawValue: rawCode)
      // Debug text is diagnostic only: decode leniently rather than fail the goodbye.
      let debug = payload.readString(length: payload.readableBytes) ?? ""
      return .goAway(lastStreamID: last, code: code, debug: debug)

    case .windowUpdate:
      guard let rawIncrement = payload.readInteger(as: UInt32.self) else { throw Self.short(header, type) }
      let increment = rawIncrement & 0x7FFF_FFFF
      guard increment > 0 else {
        throw WireError(
          .protocolError,
          "WINDOW_UPDATE with a zero increment",
          stream: stream == 0 ? nil : stream
        )
      }
      return .windowUpdate(streamID: stream, increment: increment)
    }
  }

  /// A frame shorter than its type's fixed part (checkStreamAndLength refuses these first).
  private static func short(_ header: FrameHeader, _ type: FrameType) -> WireError {
    WireError(.frameSizeError, "\(type) frame of \(header.length) octets is shorter than its fixed part")
  }

  /// Whether `path` is `/service/method`: a slash, a non-empty service, a slash, a non-empty method.
  static func isMethodPath(_ path: String) -> Bool {
    let parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    return parts.count == 3 && parts[0].isEmpty && !parts[1].isEmpty && !parts[2].isEmpty
  }
}
