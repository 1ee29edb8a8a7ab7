public import GRPCCore
public import NIOCore

/// The bag of bytes the Redress wire hands to and takes from GRPCCore.
///
/// It wraps a `ByteBuffer` so a message that arrived in one frame reaches the deserializer as a
/// slice of the read buffer, with no copy.
public struct WireBytes: GRPCContiguousBytes, Hashable, Sendable {
  /// The bytes, as a `ByteBuffer` whose readable bytes are the message.
  public var buffer: ByteBuffer

  /// Wraps a buffer; its readable bytes become the message.
  public init(_ buffer: ByteBuffer) {
    self.buffer = buffer
  }

  /// Creates `count` copies of `byte`.
  public init(repeating byte: UInt8, count: Int) {
    self.buffer = ByteBuffer(repeating: byte, count: count)
  }

  /// Copies the bytes of `sequence`.
  public init(_ sequence: some Sequence<UInt8>) {
    self.buffer = ByteBuffer(bytes: sequence)
  }

  /// The number of bytes.
  public var count: Int { self.buffer.readableBytes }

  /// Calls `body` with the bytes.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try self.buffer.withUnsafeReadableBytes(body)
  }

  /// Calls `body` with the bytes, which it may change in place.
  public mutating func withUnsafeMutableBytes<R>(
    _ body: (UnsafeMutableRawBufferPointer) throws -> R
  ) rethrows -> R {
    // GRPCContiguousBytes has no notion of readable versus writable bytes: all of them are the
    // message, which in ByteBuffer terms are the readable bytes.
    try self.buffer.withUnsafeMutableReadableBytes(body)
  }
}
