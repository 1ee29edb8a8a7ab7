import Foundation
import GRPCCore
import GRPCProtobuf
import NIOCore
import Testing
@testable import RedressWire

/// Per-message compression on the Redress wire (issue 7): the gRPC interop compression cases,
/// negotiation failures, decompression bombs, and the codec itself.
@Suite("Message compression")
struct CompressionTests {
  typealias TestService = Grpc_Testing_TestService

  static let algorithms: [(CompressionAlgorithm, String)] = [(.gzip, "gzip"), (.deflate, "deflate")]

  private func withServer<T: Sendable>(
    responseAlgorithm: CompressionAlgorithm = .none,
    enabled: CompressionAlgorithmSet = [.gzip, .deflate],
    maxMessageSize: Int? = nil,
    _ body: (TestServer, EncodingRecorder) async throws -> T
  ) async throws -> T {
    let recorder = EncodingRecorder()
    return try await withWireServer(services: [InteropTestService()], interceptors: [recorder]) { config in
      config.connection.compression = .init(enabledAlgorithms: enabled, responseAlgorithm: responseAlgorithm)
      if let maxMessageSize { config.connection.maxMessageSize = maxMessageSize }
    } _: { server in
      try await body(server, recorder)
    }
  }

  @Test("client_compressed_unary: a compressed request is decompressed and its grpc-encoding reaches the service", arguments: [0, 1])
  func clientCompressedUnary(algorithmIndex: Int) async throws {
    let (algorithm, name) = Self.algorithms[algorithmIndex]
    try await self.withServer { server, recorder in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        var options = CallOptions.defaults
        options.compression = algorithm
        let request = Grpc_Testing_SimpleRequest.with {
          $0.responseSize = 314_159
          $0.payload.body = Data(count: 271_828)
        }
        let compressed = try await stub.unaryCall(request, options: options)
        #expect(compressed.payload.body.count == 314_159)
        let plain = try await stub.unaryCall(request)
        #expect(plain.payload.body.count == 314_159)
      }
      #expect(recorder.encodings(for: "UnaryCall") == [name, "none"])
    }
  }

  @Test("server_compressed_unary: a server configured to compress answers with grpc-encoding the client accepts", arguments: [0, 1])
  func serverCompressedUnary(algorithmIndex: Int) async throws {
    let (algorithm, name) = Self.algorithms[algorithmIndex]
    try await self.withServer(responseAlgorithm: algorithm) { server, _ in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        let request = Grpc_Testing_SimpleRequest.with { $0.responseSize = 314_159 }
        try await stub.unaryCall(request) { response in
          #expect(Array(response.metadata[stringValues: "grpc-encoding"]) == [name])
          let size = try response.message.payload.body.count
          #expect(size == 314_159)
        }
      }
      // A client that does not accept the server's algorithm gets uncompressed responses.
      try await server.withClient { config in
        config.connection.compression.enabledAlgorithms = []
      } _: { client in
        let stub = TestService.Client(wrapping: client)
        let request = Grpc_Testing_SimpleRequest.with { $0.responseSize = 1_000 }
        try await stub.unaryCall(request) { response in
          #expect(Array(response.metadata[stringValues: "grpc-encoding"]).isEmpty)
          let size = try response.message.payload.body.count
          #expect(size == 1_000)
        }
      }
    }
  }

  @Test("client_compressed_streaming: every message of a client stream is compressed and summed correctly")
  func clientCompressedStreaming() async throws {
    try await self.withServer { server, recorder in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        var options = CallOptions.defaults
        options.compression = .gzip
        let response = try await stub.streamingInputCall(options: options) { writer in
          try await writer.write(.with { $0.payload.body = Data(count: 27_182) })
          try await writer.write(.with { $0.payload.body = Data(count: 45_904) })
        }
        #expect(response.aggregatedPayloadSize == 73_086)
      }
      #expect(recorder.encodings(for: "StreamingInputCall") == ["gzip"])
    }
  }

  @Test("server_compressed_streaming: every message of a server stream is compressed and arrives intact")
  func serverCompressedStreaming() async throws {
    try await self.withServer(responseAlgorithm: .gzip) { server, _ in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        let request = Grpc_Testing_StreamingOutputCallRequest.with {
          $0.responseParameters = [.with { $0.size = 31_415 }, .with { $0.size = 92_653 }]
        }
        let (encoding, sizes) = try await stub.streamingOutputCall(request) { response in
          var sizes: [Int] = []
          for try await message in response.messages { sizes.append(message.payload.body.count) }
          return (Array(response.metadata[stringValues: "grpc-encoding"]), sizes)
        }
        #expect(encoding == ["gzip"])
        #expect(sizes == [31_415, 92_653])
      }
    }
  }

  @Test("a request compressed with an algorithm the server does not accept answers unimplemented, naming the accepted ones")
  func algorithmMismatch() async throws {
    try await self.withServer(enabled: [.deflate]) { server, recorder in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        var options = CallOptions.defaults
        options.compression = .gzip
        let error = await #expect(throws: RPCError.self) {
          try await stub.unaryCall(.with { $0.responseSize = 10 }, options: options)
        }
        #expect(error?.code == .unimplemented)
        #expect(error?.message.contains("'gzip'") == true)
        #expect(error?.message.contains("deflate,identity") == true)
        #expect(error.map { Array($0.metadata[stringValues: "grpc-accept-encoding"]) } == ["deflate,identity"])
        // The same connection still serves an uncompressed call; the refused one never reached the service.
        let response = try await stub.unaryCall(.with { $0.responseSize = 10 })
        #expect(response.payload.body.count == 10)
      }
      #expect(recorder.encodings(for: "UnaryCall") == ["none"])
    }
  }

  @Test("a decompression bomb is stopped at the size limit with resourceExhausted while another call on the connection goes on")
  func decompressionBomb() async throws {
    try await self.withServer { server, _ in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        // 16 MiB of zeros: about 16 KiB compressed, four times the default 4 MiB limit inflated.
        let bomb = Grpc_Testing_SimpleRequest.with { $0.payload.body = Data(count: 16 * 1024 * 1024) }
        let wireSize = try MessageCompression.compress(ByteBuffer(bytes: try bomb.serializedBytes() as [UInt8]), with: .gzip).readableBytes
        #expect(wireSize < 64 * 1024, "the bomb is small on the wire")
        var options = CallOptions.defaults
        options.compression = .gzip

        try await withThrowingTaskGroup(of: Void.self) { group in
          // A healthy streaming call on the same connection, open across the bomb.
          let (proceed, proceedContinuation) = AsyncStream.makeStream(of: Void.self)
          group.addTask {
            let sizes = try await stub.fullDuplexCall { writer in
              try await writer.write(.with { $0.responseParameters = [.with { $0.size = 100 }] })
              var iterator = proceed.makeAsyncIterator()
              await iterator.next()
              try await writer.write(.with { $0.responseParameters = [.with { $0.size = 200 }] })
            } onResponse: { response in
              var sizes: [Int] = []
              for try await message in response.messages { sizes.append(message.payload.body.count) }
              return sizes
            }
            #expect(sizes == [100, 200])
          }
          let error = await #expect(throws: RPCError.self) {
            try await stub.unaryCall(bomb, options: options)
          }
          #expect(error?.code == .resourceExhausted)
          #expect(error?.message.contains("\(4 * 1024 * 1024)") == true)
          proceedContinuation.yield()
          try await group.waitForAll()
        }
      }
    }
  }

  @Test("random payloads survive a compress and decompress round trip with each algorithm", arguments: [0, 1])
  func codecRoundTrip(algorithmIndex: Int) throws {
    let (algorithm, _) = Self.algorithms[algorithmIndex]
    var generator = SystemRandomNumberGenerator()
    for size in [0, 1, 17, 1_000, 65_536, 300_001] {
      let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
      let compressed = try MessageCompression.compress(ByteBuffer(bytes: bytes), with: algorithm)
      let restored = try MessageCompression.decompress(compressed, with: algorithm, limit: size)
      #expect(Array(buffer: restored) == bytes, "size \(size)")
    }
  }

  @Test("decompression stops at the limit and rejects corrupt input")
  func codecLimits() throws {
    let zeros = ByteBuffer(repeating: 0, count: 1_000_000)
    let compressed = try MessageCompression.compress(zeros, with: .gzip)
    #expect(throws: MessageCompression.DecompressionFailure.tooLarge) {
      try MessageCompression.decompress(compressed, with: .gzip, limit: 999_999)
    }
    let exact = try MessageCompression.decompress(compressed, with: .gzip, limit: 1_000_000)
    #expect(exact.readableBytes == 1_000_000)
    #expect(throws: MessageCompression.DecompressionFailure.corrupt) {
      try MessageCompression.decompress(ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8]), with: .gzip, limit: 100)
    }
  }

  @Test("on the wire a compressed request carries the COMPRESSED flag and a server-compressed response does too")
  func wireFlags() async throws {
    try await self.withServer(responseAlgorithm: .gzip) { server, _ in
      try await RawWireClient.withConnection(port: server.port) { raw in
        _ = try await raw.handshake()
        let request = Grpc_Testing_SimpleRequest.with {
          $0.responseSize = 50_000
          $0.payload.body = Data(count: 40_000)
        }
        let body = try MessageCompression.compress(ByteBuffer(bytes: try request.serializedBytes() as [UInt8]), with: .gzip)
        var metadata = Metadata()
        metadata.addString("gzip", forKey: "grpc-encoding")
        metadata.addString("gzip,identity", forKey: "grpc-accept-encoding")
        try await raw.send(
          .headers(streamID: 1, path: "/grpc.testing.TestService/UnaryCall", metadata: metadata, endStream: false),
          .message(streamID: 1, fragment: body, flags: [.endMessage, .endStream, .compressed])
        )
        let answer = try await raw.answer(on: 1)
        #expect(answer.status?.code == .ok)
        guard case .headers(_, _, let responseMetadata, _) = answer.frames.first else {
          Issue.record("expected HEADERS first, got \(answer.types)")
          return
        }
        #expect(Array(responseMetadata[stringValues: "grpc-encoding"]) == ["gzip"])
        var fragments = ByteBuffer()
        var allCompressed = true
        for case .message(_, var fragment, let flags) in answer.frames {
          allCompressed = allCompressed && flags.contains(.compressed)
          fragments.writeBuffer(&fragment)
        }
        #expect(allCompressed)
        #expect(fragments.readableBytes < 50_000, "zeros compress well")
        let plain = try MessageCompression.decompress(fragments, with: .gzip, limit: 1_000_000)
        let response = try Grpc_Testing_SimpleResponse(serializedBytes: Array(buffer: plain))
        #expect(response.payload.body.count == 50_000)
      }
    }
  }
}
