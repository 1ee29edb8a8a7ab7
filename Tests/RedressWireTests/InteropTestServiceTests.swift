import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing

/// Checks the interop service itself over grpc-swift's in-process transport, so that a failing wire
/// interop test points at the wire rather than at the service.
@Suite("Interop test service")
struct InteropTestServiceTests {
  typealias Client = Grpc_Testing_TestService.Client<InProcessTransport.Client>

  @Test("a unary call returns zeros of the requested size and echoes the test metadata")
  func unaryCallEchoes() async throws {
    try await withInteropService { client, _ in
      let metadata: Metadata = [
        InteropTestService.echoInitialMetadataKey: "test_initial_metadata_value",
        InteropTestService.echoTrailingMetadataKey: .binary([0xAB, 0xAB, 0xAB]),
      ]
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseSize = 314_159
        $0.payload.body = Data(count: 271_828)
      }
      try await client.unaryCall(request, metadata: metadata) { response in
        let message = try response.message
        #expect(message.payload.body == Data(count: 314_159))
        #expect(Array(response.metadata[stringValues: InteropTestService.echoInitialMetadataKey]) == ["test_initial_metadata_value"])
        #expect(
          Array(response.trailingMetadata[binaryValues: InteropTestService.echoTrailingMetadataKey]) == [[0xAB, 0xAB, 0xAB]]
        )
      }
    }
  }

  @Test("a unary call ends with the status code and message the request asks for")
  func unaryCallStatus() async throws {
    try await withInteropService { client, _ in
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseStatus.code = 2
        $0.responseStatus.message = "test status message"
      }
      let error = await #expect(throws: RPCError.self) {
        try await client.unaryCall(request)
      }
      #expect(error?.code == .unknown)
      #expect(error?.message == "test status message")
    }
  }

  @Test("a streaming output call sends one response per response parameter, in order")
  func streamingOutput() async throws {
    try await withInteropService { client, _ in
      let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
      let request = Grpc_Testing_StreamingOutputCallRequest.with {
        $0.responseParameters = sizes.map { size in .with { $0.size = size } }
      }
      let received = try await client.streamingOutputCall(request) { response in
        var received: [Int] = []
        for try await message in response.messages {
          received.append(message.payload.body.count)
        }
        return received
      }
      #expect(received == sizes.map { Int($0) })
    }
  }

  @Test("a streaming input call answers with the sum of the payload sizes")
  func streamingInput() async throws {
    try await withInteropService { client, _ in
      let response = try await client.streamingInputCall { writer in
        for size in [27_182, 8, 1_828, 45_904] {
          try await writer.write(.with { $0.payload.body = Data(count: size) })
        }
      }
      #expect(response.aggregatedPayloadSize == 74_922)
    }
  }

  @Test("a full duplex call answers each request before the client sends the next")
  func fullDuplexPingPong() async throws {
    try await withInteropService { client, _ in
      let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
      // The producer sends request n+1 only after the response to request n arrived.
      let (answered, answeredContinuation) = AsyncStream<Void>.makeStream()
      let received = try await client.fullDuplexCall { writer in
        var answers = answered.makeAsyncIterator()
        for size in sizes {
          try await writer.write(.with { $0.responseParameters = [.with { $0.size = size }] })
          guard await answers.next() != nil else { return }
        }
      } onResponse: { response in
        var received: [Int] = []
        for try await message in response.messages {
          received.append(message.payload.body.count)
          answeredContinuation.yield()
        }
        answeredContinuation.finish()
        return received
      }
      #expect(received == sizes.map { Int($0) })
    }
  }

  @Test("a full duplex call ends with the requested status and echoed trailing metadata")
  func fullDuplexStatus() async throws {
    try await withInteropService { client, _ in
      let metadata: Metadata = [InteropTestService.echoTrailingMetadataKey: .binary([0x01, 0x02])]
      let error = await #expect(throws: RPCError.self) {
        try await client.fullDuplexCall(metadata: metadata) { writer in
          try await writer.write(.with {
            $0.responseStatus.code = 2
            $0.responseStatus.message = "test status message"
          })
        } onResponse: { response in
          for try await _ in response.messages {}
        }
      }
      let status = try #require(error)
      #expect(status.code == .unknown)
      #expect(status.message == "test status message")
      #expect(Array(status.metadata[binaryValues: InteropTestService.echoTrailingMetadataKey]) == [[0x01, 0x02]])
    }
  }

  @Test("a half duplex call answers every buffered request in order")
  func halfDuplex() async throws {
    try await withInteropService { client, _ in
      let sizes: [Int32] = [3, 1, 2]
      let received = try await client.halfDuplexCall { writer in
        for size in sizes {
          try await writer.write(.with { $0.responseParameters = [.with { $0.size = size }] })
        }
      } onResponse: { response in
        var received: [Int] = []
        for try await message in response.messages {
          received.append(message.payload.body.count)
        }
        return received
      }
      #expect(received == [3, 1, 2])
    }
  }

  @Test("the unimplemented call fails with unimplemented")
  func unimplemented() async throws {
    try await withInteropService { client, _ in
      let error = await #expect(throws: RPCError.self) {
        try await client.unimplementedCall(Grpc_Testing_Empty())
      }
      #expect(error?.code == .unimplemented)
    }
  }

  // Without the handler reacting to cancellation this test would wait forever; the limit turns that into a failure.
  @Test("a full duplex handler reports the RPC's cancellation to the probe", .timeLimit(.minutes(1)))
  func fullDuplexCancellation() async throws {
    let probe = CancellationProbe()
    try await withInteropService(probe: probe) { client, server in
      let (rpcEnded, rpcEndedContinuation) = AsyncStream<Void>.makeStream()
      let error = await #expect(throws: RPCError.self) {
        try await client.fullDuplexCall { writer in
          try await writer.write(.with { $0.responseParameters = [.with { $0.size = 1 }] })
          // Keep the request stream open: the handler must be waiting on it when it is cancelled.
          for await _ in rpcEnded {}
        } onResponse: { response in
          defer { rpcEndedContinuation.finish() }
          for try await _ in response.messages {
            // The handler is running; shutting the server down cancels its RPC handle.
            server.beginGracefulShutdown()
          }
        }
      }
      #expect(error?.code == .cancelled)
      let event = await probe.nextCancellation()
      #expect(
        event == CancellationProbe.Event(
          method: Grpc_Testing_TestService.Method.FullDuplexCall.descriptor,
          source: .rpcCancellationHandle
        )
      )
    }
  }

  private func withInteropService(
    probe: CancellationProbe? = nil,
    _ body: (Client, GRPCServer<InProcessTransport.Server>) async throws -> Void
  ) async throws {
    let transport = InProcessTransport()
    let service = InteropTestService(cancellationProbe: probe)
    try await withGRPCServer(transport: transport.server, services: [service]) { server in
      try await withGRPCClient(transport: transport.client) { client in
        try await body(Client(wrapping: client), server)
      }
    }
  }
}
