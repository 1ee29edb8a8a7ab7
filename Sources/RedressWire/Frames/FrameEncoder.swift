import GRPCCore
public import NIOCore

/// Writes frames in the wire format of docs/PROTOCOL.md §4.
///
/// Encoding appends to a caller-owned buffer so a connection can coalesce every frame produced in
/// one event-loop tick into one write (and so one TLS record batch).
public enum FrameEncoder {
  /// Appends a frame header.
  public static func writeHeader(
    length: Int,
    type: FrameType,
    flags: FrameFlags = [],
    streamID: UInt32,
    into buffer: inout ByteBuffer
  ) {
    precondition(length <= PeerSettings.maximumMaxFrameSize, "frame length exceeds 24 bits")
    buffer.writeInteger(UInt8(truncatingIfNeeded: length >> 16))
    buffer.writeInteger(UInt16(truncatingIfNeeded: length))
    buffer.writeInteger(type.rawValue)
    buffer.writeInteger(flags.rawValue)
    buffer.writeInteger(streamID & FrameHeader.maxStreamID)
  }

  /// Appends `frame`, header and payload.
  public static func encode(_ frame: Frame, into buffer: inout ByteBuffer) {
    switch frame {
    case .settings(let settings):
      Self.writeHeader(length: settings.count * 6, type: .settings, streamID: 0, into: &buffer)
      for setting in settings {
        buffer.writeInteger(setting.id.rawValue)
        buffer.writeInteger(setting.value)
      }

    case .settingsAck:
      Self.writeHeader(length: 0, type: .settings, flags: .ack, streamID: 0, into: &buffer)

    case .headers(let stream, let path, let metadata, let endStream):
      let length = 2 + path.utf8.count + MetadataCodec.encodedLength(of: metadata)
      Self.writeHeader(length: length, type: .headers, flags: endStream ? .endStream : [], streamID: stream, into: &buffer)
      buffer.writeInteger(UInt16(path.utf8.count))
      buffer.writeString(path)
      MetadataCodec.encode(metadata, into: &buffer)

    case .message(let stream, var fragment, let flags):
      Self.writeHeader(length: fragment.readableBytes, type: .message, flags: flags, streamID: stream, into: &buffer)
      buffer.writeBuffer(&fragment)

    case .trailers(let stream, let status, let metadata):
      let message = Self.clampedUTF8(status.message, maxLength: Self.maxStatusMessageLength)
      let length = 1 + 2 + message.count + MetadataCodec.encodedLength(of: metadata)
      Self.writeHeader(length: length, type: .trailers, streamID: stream, into: &buffer)
      buffer.writeInteger(UInt8(status.code.rawValue))
      buffer.writeInteger(UInt16(message.count))
      buffer.writeBytes(message)
      MetadataCodec.encode(metadata, into: &buffer)

    case .resetStream(let stream, let code):
      Self.writeHeader(length: 4, type: .resetStream, streamID: stream, into: &buffer)
      buffer.writeInteger(code.rawValue)

    case .ping(let data, let ack):
      Self.writeHeader(length: 8, type: .ping, flags: ack ? .ack : [], streamID: 0, into: &buffer)
      buffer.writeInteger(data)

    case .goAway(let last, let code, let debug):
      let debugBytes = Self.clampedUTF8(debug, maxLength: Self.maxGoAwayDebugLength)
      Self.writeHeader(length: 8 + debugBytes.count, type: .goAway, streamID: 0, into: &buffer)
      buffer.writeInteger(last & FrameHeader.maxStreamID)
      buffer.writeInteger(code.rawValue)
      buffer.writeBytes(debugBytes)

    case .windowUpdate(let stream, let increment):
      Self.writeHeader(length: 4, type: .windowUpdate, streamID: stream, into: &buffer)
      buffer.writeInteger(increment & 0x7FFF_FFFF)
    }
  }

  /// The most debug octets a `GOAWAY` carries; longer text is cut.
  public static let maxGoAwayDebugLength = 1024
  /// The most octets of a status message; longer messages are cut on a character boundary.
  public static let maxStatusMessageLength = 4096

  /// The encoded length of `frame`, header included.
  public static func encodedLength(of frame: Frame) -> Int {
    var buffer = ByteBuffer()
    Self.encode(frame, into: &buffer)
    return buffer.readableBytes
  }

  /// The first `maxLength` octets of `text` at most, cut on a character boundary.
  static func clampedUTF8(_ text: String, maxLength: Int) -> [UInt8] {
    let utf8 = text.utf8
    if utf8.count <= maxLength { return Array(utf8) }
    var end = utf8.index(utf8.startIndex, offsetBy: maxLength)
    // Back up to a character boundary so the cut text is still valid UTF-8.
    while end > utf8.startIndex && UTF8.isContinuation(utf8[end]) {
      end = utf8.index(before: end)
    }
    return Array(utf8[..<end])
  }
}
