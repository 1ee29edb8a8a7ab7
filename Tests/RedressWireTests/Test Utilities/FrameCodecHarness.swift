import NIOCore
import NIOEmbedded
import RedressWire
import Testing

/// Runs the frame codec on an `EmbeddedChannel`: `FrameEncoderHandler` for writes and
/// `FrameDecoder` for reads, as a tool or a test peer would.
struct FrameCodecHarness {
  let channel: EmbeddedChannel

  /// A channel whose decoder expects a preface first or not, with the given receive limits.
  init(expectingPreface: Bool = false, maxFrameSize: Int = 16_384, maxMetadataSize: Int = 16_384) throws {
    self.channel = EmbeddedChannel()
    try self.channel.pipeline.syncOperations.addHandler(
      ByteToMessageHandler(
        FrameDecoder(expectingPreface: expectingPreface, maxFrameSize: maxFrameSize, maxMetadataSize: maxMetadataSize)
      )
    )
    try self.channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoderHandler()))
  }

  /// The octets the encoder writes for `elements`; a preface is written as `Preface.encode` does.
  func encode(_ elements: [FrameParser.Element]) throws -> [UInt8] {
    var octets: [UInt8] = []
    for element in elements {
      switch element {
      case .preface(let preface):
        var buffer = ByteBuffer()
        preface.encode(into: &buffer)
        octets += Array(buffer.readableBytesView)
      case .frame(let frame):
        try self.channel.writeOutbound(frame)
        while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
          octets += Array(buffer.readableBytesView)
        }
      }
    }
    return octets
  }

  /// The octets of one frame.
  func encode(_ frame: Frame) throws -> [UInt8] {
    try self.encode([.frame(frame)])
  }

  /// Feeds `octets` to the decoder in reads of at most `chunkSize` octets and returns everything
  /// decoded so far.
  func decode(_ octets: [UInt8], chunkSize: Int = .max) throws -> [FrameParser.Element] {
    var decoded: [FrameParser.Element] = []
    var start = 0
    while start < octets.count {
      let end = min(octets.count, start + max(chunkSize, 1))
      try self.channel.writeInbound(ByteBuffer(bytes: octets[start..<end]))
      start = end
      while let element = try self.channel.readInbound(as: FrameParser.Element.self) {
        decoded.append(element)
      }
    }
    return decoded
  }

  /// The `WireError` the decoder raises for `octets`, or `nil` (recording an issue) if it raises
  /// none or another error.
  func rejection(
    of octets: [UInt8],
    sourceLocation: SourceLocation = #_sourceLocation
  ) -> WireError? {
    do {
      let decoded = try self.decode(octets)
      Issue.record("decoder accepted the octets and produced \(decoded)", sourceLocation: sourceLocation)
      return nil
    } catch let error as WireError {
      return error
    } catch {
      Issue.record("decoder raised \(error), not a WireError", sourceLocation: sourceLocation)
      return nil
    }
  }
}
