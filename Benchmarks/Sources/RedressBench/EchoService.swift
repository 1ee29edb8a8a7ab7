import GRPCCore

/// Serializes messages that are already bytes, so both transports carry exactly the benchmark's
/// payload and neither pays for protobuf.
struct BytesCodec: MessageSerializer, MessageDeserializer {
  typealias Message = [UInt8]

  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }

  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}

/// The service every transport scenario runs: a unary echo and a server stream.
///
/// `Stream` takes 8 octets (message count u32, message size u32, big-endian) and answers with that
/// many messages of that size.
struct EchoService: RegistrableRPCService {
  static let echo = MethodDescriptor(fullyQualifiedService: "redress.bench.Echo", method: "Echo")
  static let stream = MethodDescriptor(fullyQualifiedService: "redress.bench.Echo", method: "Stream")

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    router.registerHandler(forMethod: Self.echo, deserializer: BytesCodec(), serializer: BytesCodec()) {
      request, _ in
      var received: [UInt8] = []
      for try await message in request.messages {
        received = message
      }
      return StreamingServerResponse(single: ServerResponse(message: received))
    }

    router.registerHandler(forMethod: Self.stream, deserializer: BytesCodec(), serializer: BytesCodec()) {
      request, _ in
      var received: [UInt8] = []
      for try await message in request.messages {
        received = message
      }
      let (count, size) = Self.decodeStreamRequest(received)
      return StreamingServerResponse(of: [UInt8].self) { writer in
        let payload = [UInt8](repeating: 0x5A, count: size)
        for _ in 0..<count {
          try await writer.write(payload)
        }
        return [:]
      }
    }
  }

  static func encodeStreamRequest(count: Int, size: Int) -> [UInt8] {
    func be(_ value: Int) -> [UInt8] {
      let v = UInt32(value)
      return [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
    return be(count) + be(size)
  }

  static func decodeStreamRequest(_ bytes: [UInt8]) -> (count: Int, size: Int) {
    guard bytes.count == 8 else { return (0, 0) }
    func be(_ at: Int) -> Int {
      Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
    }
    return (be(0), be(4))
  }
}
