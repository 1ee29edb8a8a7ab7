public import NIOCore

/// A `ByteToMessageDecoder` over ``FrameParser``, for tools and `EmbeddedChannel` tests.
///
/// Connections parse inline in their handler instead (one pipeline hop fewer per read); both use
/// the same parser, so what is tested here is what runs.
public struct FrameDecoder: ByteToMessageDecoder {
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

  public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    if buffer.readableBytes > 0 {
      self.parser.append(buffer.slice())
      buffer.moveReaderIndex(to: buffer.writerIndex)
    }
    // The parser now holds every octet, so `buffer` is empty and ByteToMessageHandler will not
    // call again for this read: everything already complete must be delivered now.
    while let element = try self.parser.next() {
      context.fireChannelRead(Self.wrapInboundOut(element))
    }
    return .needMoreData
  }

  public mutating func decodeLast(
    context: ChannelHandlerContext,
    buffer: inout ByteBuffer,
    seenEOF: Bool
  ) throws -> DecodingState {
    try self.decode(context: context, buffer: &buffer)
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
