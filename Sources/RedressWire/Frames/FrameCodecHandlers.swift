public import NIOCore

/// A `ByteToMessageDecoder` over ``FrameParser``, for tools and `EmbeddedChannel` tests.
///
/// Connections parse inline in their handler instead (one pipeline hop fewer per read); both use
/// the same parser, so what is tested here is what runs.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
  public typealias InboundOut = FrameParser.Element

  private var parser: FrameParser

  /// A decoder with the given limits; see ``FrameParser/init(expectingPreface:maxFrameSize:maxMetadataSize:)``.
  public init(expectingPreface: Bool = true, maxFrameSize: Int = 16_384, maxMetadataSize: Int = 16_384) {
    self.parser = FrameParser(
      expectingPreface: expectingPreface,
      maxFrameSize: maxFrameSize,
      maxMetadataSize: maxMetadataSize
    )
  }

  public mutating func decode(buffer: inout ByteBuffer) throws -> FrameParser.Element? {
    if buffer.readableBytes > 0 {
      self.parser.append(buffer.readSlice(length: buffer.readableBytes)!)
    }
    return try self.parser.next()
  }

  public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> FrameParser.Element? {
    try self.decode(buffer: &buffer)
  }
}

/// A `MessageToByteEncoder` for frames, for tools and `EmbeddedChannel` tests.
public struct FrameEncoderHandler: MessageToByteEncoder {
  public typealias OutboundIn = Frame

  /// An encoder.
  public init() {}

  public func encode(data: Frame, out: inout ByteBuffer) throws {
    FrameEncoder.encode(data, into: &out)
  }
}
