import GRPCCore
import Logging
import NIOCore
import NIOEmbedded

/// Entry points for the libFuzzer targets in `Fuzz/` (and their corpus replay in tests): each feeds arbitrary
/// octets to one part of the wire and traps if an invariant breaks. An input that makes any of them crash,
/// hang or trap is a bug: nothing a peer sends may do that.
package enum WireFuzzing {
  /// The frame parser: any octets, in one piece and split at an input-chosen point, parse to the same elements
  /// or the same error.
  package static func frames(_ input: UnsafeRawBufferPointer) {
    let whole = Self.parseAll([ByteBuffer(bytes: input)])
    if input.count > 1 {
      let cut = Int(input[0]) % input.count
      let split = Self.parseAll([ByteBuffer(bytes: input[..<cut]), ByteBuffer(bytes: input[cut...])])
      precondition(whole == split, "parsing in two pieces differs: \(whole) vs \(split)")
    }
  }

  private static func parseAll(_ pieces: [ByteBuffer]) -> String {
    var parser = FrameParser(expectingPreface: true)
    var elements: [FrameParser.Element] = []
    for piece in pieces {
      parser.append(piece)
      while true {
        do {
          guard let element = try parser.next() else { break }
          elements.append(element)
        } catch {
          // A connection error ends parsing; a stream error consumed its frame and parsing goes on.
          if case .stream = error.scope { continue }
          return "\(elements.count) then \(error.code)"
        }
      }
    }
    return "\(elements.count) elements"
  }

  /// The metadata codec: a block decodes or is refused; what decodes encodes to the same octets' length and
  /// decodes again to the same metadata.
  package static func metadata(_ input: UnsafeRawBufferPointer) {
    var buffer = ByteBuffer(bytes: input)
    guard let decoded = try? MetadataCodec.decode(&buffer, stream: 1) else { return }
    var encoded = ByteBuffer()
    MetadataCodec.encode(decoded, into: &encoded)
    precondition(encoded.readableBytes == MetadataCodec.encodedLength(of: decoded))
    guard let again = try? MetadataCodec.decode(&encoded, stream: 1) else {
      preconditionFailure("re-encoded metadata does not decode")
    }
    precondition(again.count == decoded.count)
  }

  /// The decompressor: gzip and deflate input of any shape yields at most the limit or an error.
  package static func decompress(_ input: UnsafeRawBufferPointer) {
    let limit = 64 * 1024
    for algorithm in [CompressionAlgorithm.gzip, .deflate] {
      if let output = try? MessageCompression.decompress(ByteBuffer(bytes: input), with: algorithm, limit: limit) {
        precondition(output.readableBytes <= limit)
      }
    }
  }

  /// A whole server connection (plaintext, on an embedded channel) fed the client preface and `SETTINGS`, then
  /// the input as frames, then closed. Every stream it opens is read to its end by a reader that consumes what
  /// arrives, as a handler would. Afterwards no inbound octet may still count against the buffer budgets.
  package static func serverConnection(_ input: UnsafeRawBufferPointer) {
    var config = ConnectionConfig.defaults
    config.maxBufferedInboundBytes = 256 * 1024
    config.requestTimeout = nil
    config.idleTimeout = nil
    let serverBudget = InboundBudget(serverLimit: 512 * 1024)
    let starts = StreamStarts()
    let channel = EmbeddedChannel()
    var logger = Logger(label: "fuzz")
    logger.logLevel = .critical
    let handler = ConnectionHandler(
      role: .server(onStream: { starts.append($0) }),
      config: config,
      logger: logger,
      serverBudget: serverBudget
    )
    do {
      try Self.open(handler, on: channel)
      // In up to four reads, cut where the input's first octets say, as TCP segments might.
      var rest = input[...]
      let cuts = input.prefix(3).map { Int($0) * 97 }
      for cut in cuts where channel.isActive && !rest.isEmpty {
        let piece = rest.prefix(max(1, cut))
        try channel.writeInbound(ByteBuffer(bytes: piece))
        rest = rest.dropFirst(piece.count)
        starts.drain()
      }
      if channel.isActive && !rest.isEmpty {
        try channel.writeInbound(ByteBuffer(bytes: rest))
      }
      starts.drain()
      precondition(handler.inboundBudget.inUse <= config.maxBufferedInboundBytes, "connection budget overrun")
      precondition(serverBudget.inUse <= serverBudget.limit, "server budget overrun")
    } catch {
      // A closed channel or a refused write is an answer, not a failure.
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    starts.drainAll()
    precondition(serverBudget.inUse == 0, "\(serverBudget.inUse) octets still reserved after the connection closed")
  }
}

extension WireFuzzing {
  /// Adds `handler` to `channel`, connects it, and delivers a client's preface, empty `SETTINGS` and the ACK of
  /// the server's, followed by `then`: the connection is active.
  static func open(_ handler: ConnectionHandler, on channel: EmbeddedChannel, then frames: [Frame] = []) throws {
    try channel.pipeline.syncOperations.addHandler(handler)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    var opening = ByteBuffer()
    Preface.clientDefault.encode(into: &opening)
    FrameEncoder.encode(.settings([]), into: &opening)
    FrameEncoder.encode(.settingsAck, into: &opening)
    for frame in frames { FrameEncoder.encode(frame, into: &opening) }
    try channel.writeInbound(opening)
  }
}

/// The streams a fuzzed connection opened, read as a handler would.
private final class StreamStarts: @unchecked Sendable {
  // Only touched on the embedded channel's thread (the caller's).
  private var starts: [ServerStreamStart] = []

  func append(_ start: ServerStreamStart) { self.starts.append(start) }

  /// Reads every part already queued on every stream (an embedded loop has no other thread to read them).
  func drain() {
    for start in self.starts {
      start.inbound.drainQueued()
    }
  }

  /// Reads what is queued and lets every stream go.
  func drainAll() {
    self.drain()
    self.starts.removeAll()
  }
}
