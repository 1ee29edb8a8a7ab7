import GRPCCore

/// Serializes a message that is already bytes: what is written is exactly what travels, so tests
/// can size messages to the octet (no protobuf overhead).
struct RawBytesCodec: MessageSerializer, MessageDeserializer {
  typealias Message = [UInt8]

  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }

  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
