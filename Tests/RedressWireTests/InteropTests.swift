import Foundation
import GRPCCore
import Testing
@testable import RedressWire
import RedressTestSupport

/// The gRPC interop cases (grpc/grpc doc/interop-test-descriptions.md), over the Redress wire and TLS.
@Suite("gRPC interop cases over the Redress wire")
struct InteropTests {
  typealias TestService = Grpc_Testing_TestService

  private func withInterop<T: Sendable>(
    probe: CancellationProbe? = nil,
    _ body: (TestService.Client<WireClientTransport>) async throws -> T
  ) async throws -> T {
    try await withWireServer(services: [InteropTestService(cancellationProbe: probe)]) { server in
      try await server.withClient { client in
        try await body(TestService.Client(wrapping: client))
      }
    }
  }

  @Test("empty_unary: an empty request gets an empty response")
  func emptyUnary() async throws {
    try await self.withInterop { stub in
      let response = try await stub.emptyCall(Grpc_Testing_Empty())
      #expect(response == Grpc_Testing_Empty())
    }
  }

  @Test("large_unary: 1 MiB and more each way")
  func largeUnary() async throws {
    try await self.withInterop { stub in
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseSize = 1_048_576 + 4_321
        $0.payload.body = Data(repeating: 0x5A, count: 1_048_576 + 1_234)
      }
      let response = try await stub.unaryCall(request)
      #expect(response.payload.body.count == 1_048_576 + 4_321)
      #expect(response.payload.body.allSatisfy { $0 == 0 })
    }
  }

  @Test("client_streaming: the server sums the sizes of four requests")
  func clientStreaming() async throws {
    try await self.withInterop { stub in
      let sizes = [27_182, 8, 1_828, 45_904]
      let response = try await stub.streamingInputCall { writer in
        for size in sizes {
          try await writer.write(.with { $0.payload.body = Data(count: size) })
        }
      }
      #expect(response.aggregatedPayloadSize == 74_922)
    }
  }

  @Test("server_streaming: four responses of the requested sizes, in order")
  func serverStreaming() async throws {
    try await self.withInterop { stub in
      let sizes: [Int32] = [31_415, 9, 2_653, 58_979]
      let request = Grpc_Testing_StreamingOutputCallRequest.with {
        $0.responseParameters = sizes.map { size in .with { $0.size = size } }
      }
      let received = try await stub.streamingOutputCall(request) { response in
        var received: [Int] = []
        for try await message in response.messages {
          received.append(message.payload.body.count)
        }
        return received
      }
      #expect(received == sizes.map(Int.init))
    }
  }

  @Test("ping_pong: each request is answered before the next is sent")
  func pingPong() async throws {
    try await self.withInterop { stub in
      let requestSizes: [Int] = [27_182, 8, 1_828, 45_904]
      let responseSizes: [Int32] = [31_415, 9, 2_653, 58_979]
      let (answers, answered) = AsyncStream.makeStream(of: Int.self)
      let received = try await stub.fullDuplexCall { writer in
        var answerIterator = answers.makeAsyncIterator()
        for (index, size) in requestSizes.enumerated() {
          try await writer.write(
            .with {
              $0.responseParameters = [.with { $0.size = responseSizes[index] }]
              $0.payload.body = Data(count: size)
            }
          )
          // Wait for the answer before sending the next request.
          let answer = await answerIterator.next()
          #expect(answer == Int(responseSizes[index]))
        }
      } onResponse: { response in
        var received: [Int] = []
        for try await message in response.messages {
          received.append(message.payload.body.count)
          answered.yield(message.payload.body.count)
        }
        return received
      }
      #expect(received == responseSizes.map(Int.init))
    }
  }

  @Test("empty_stream: a bidirectional call with no messages either way")
  func emptyStream() async throws {
    try await self.withInterop { stub in
      let count = try await stub.fullDuplexCall { _ in } onResponse: { response in
        var count = 0
        for try await _ in response.messages { count += 1 }
        return count
      }
      #expect(count == 0)
    }
  }

  @Test("custom_metadata: text and binary metadata travel as initial and trailing metadata")
  func customMetadata() async throws {
    let initialValue = "test_initial_metadata_value"
    let trailingValue: [UInt8] = [0xAB, 0xAB, 0xAB, 0x00, 0xFF, 0x0A]
    var metadata = Metadata()
    metadata.addString(initialValue, forKey: InteropTestService.echoInitialMetadataKey)
    metadata.addBinary(trailingValue, forKey: InteropTestService.echoTrailingMetadataKey)

    try await self.withInterop { [metadata] stub in
      // Unary.
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseSize = 314_159
        $0.payload.body = Data(count: 271_828)
      }
      try await stub.unaryCall(request, metadata: metadata) { response in
        let initial = Array(response.metadata[stringValues: InteropTestService.echoInitialMetadataKey])
        let trailing = Array(response.trailingMetadata[binaryValues: InteropTestService.echoTrailingMetadataKey])
        #expect(initial == [initialValue])
        #expect(trailing == [trailingValue])
        let size = try response.message.payload.body.count
        #expect(size == 314_159)
      }

      // Bidirectional streaming.
      try await stub.fullDuplexCall(metadata: metadata) { writer in
        try await writer.write(.with { $0.responseParameters = [.with { $0.size = 314_159 }] })
      } onResponse: { response in
        let initial = Array(response.metadata[stringValues: InteropTestService.echoInitialMetadataKey])
        #expect(initial == [initialValue])
        guard case .success(let contents) = response.accepted else {
          Issue.record("the call was rejected")
          return
        }
        var sizes: [Int] = []
        var trailing: Metadata = [:]
        for try await part in contents.bodyParts {
          switch part {
          case .message(let message): sizes.append(message.payload.body.count)
          case .trailingMetadata(let metadata): trailing = metadata
          }
        }
        #expect(sizes == [314_159])
        #expect(Array(trailing[binaryValues: InteropTestService.echoTrailingMetadataKey]) == [trailingValue])
      }
    }
  }

  @Test("status_code_and_message: the server's status code and message reach the client unchanged")
  func statusCodeAndMessage() async throws {
    try await self.withInterop { stub in
      let message = "test status message"
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseStatus = .with {
          $0.code = 2
          $0.message = message
        }
      }
      let error = await #expect(throws: RPCError.self) {
        try await stub.unaryCall(request)
      }
      #expect(error?.code == .unknown)
      #expect(error?.message == message)

      let streamError = await #expect(throws: RPCError.self) {
        try await stub.fullDuplexCall { writer in
          try await writer.write(.with { $0.responseStatus = .with { $0.code = 2; $0.message = message } })
        } onResponse: { response in
          for try await _ in response.messages {}
        }
      }
      #expect(streamError?.code == .unknown)
      #expect(streamError?.message == message)
    }
  }

  @Test("special_status_message: a non-ASCII status message arrives intact")
  func specialStatusMessage() async throws {
    try await self.withInterop { stub in
      let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
      let request = Grpc_Testing_SimpleRequest.with {
        $0.responseStatus = .with {
          $0.code = 2
          $0.message = message
        }
      }
      let error = await #expect(throws: RPCError.self) {
        try await stub.unaryCall(request)
      }
      #expect(error?.code == .unknown)
      #expect(error?.message == message)
    }
  }

  @Test("unimplemented_method: calling a method the server does not implement answers unimplemented")
  func unimplementedMethod() async throws {
    try await self.withInterop { stub in
      let error = await #expect(throws: RPCError.self) {
        try await stub.unimplementedCall(Grpc_Testing_Empty())
      }
      #expect(error?.code == .unimplemented)
    }
  }

  @Test("unimplemented_service: calling a service the server does not have answers unimplemented")
  func unimplementedService() async throws {
    try await withWireServer(services: [InteropTestService()]) { server in
      try await server.withClient { client in
        let stub = Grpc_Testing_UnimplementedService.Client(wrapping: client)
        let error = await #expect(throws: RPCError.self) {
          try await stub.unimplementedCall(Grpc_Testing_Empty())
        }
        #expect(error?.code == .unimplemented)
      }
    }
  }

  @Test("cancel_after_begin: cancelling a client stream before any message ends it as cancelled")
  func cancelAfterBegin() async throws {
    try await self.withInterop { stub in
      let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
      let task = Task {
        try await stub.streamingInputCall { _ in
          startedContinuation.yield()
          // Never sends: waits to be cancelled.
          try await waitUntilCancelled()
        }
      }
      var iterator = started.makeAsyncIterator()
      await iterator.next()
      task.cancel()
      let result = await task.result
      guard case .failure(let error as RPCError) = result else {
        Issue.record("expected the call to fail with an RPCError, got \(result)")
        return
      }
      #expect(error.code == .cancelled)
      // The reset may reach the server before its handler starts, in which case the handler
      // never runs (cancel_after_first_response checks a running handler sees it). Either way
      // the connection goes on serving.
      let response = try await stub.emptyCall(Grpc_Testing_Empty())
      #expect(response == Grpc_Testing_Empty())
    }
  }

  @Test("cancel_after_first_response: cancelling after the first response reaches the server handler")
  func cancelAfterFirstResponse() async throws {
    let probe = CancellationProbe()
    try await self.withInterop(probe: probe) { stub in
      let (firstResponse, firstResponseContinuation) = AsyncStream.makeStream(of: Int.self)
      let task = Task {
        try await stub.fullDuplexCall { writer in
          try await writer.write(
            .with {
              $0.responseParameters = [.with { $0.size = 31_415 }]
              $0.payload.body = Data(count: 27_182)
            }
          )
          try await waitUntilCancelled()
        } onResponse: { response in
          for try await message in response.messages {
            firstResponseContinuation.yield(message.payload.body.count)
          }
        }
      }
      var iterator = firstResponse.makeAsyncIterator()
      let size = await iterator.next()
      #expect(size == 31_415)
      task.cancel()
      let result = await task.result
      if case .failure(let error as RPCError) = result {
        #expect(error.code == .cancelled)
      } else {
        Issue.record("expected the call to fail as cancelled, got \(result)")
      }
      let event = try await withTimeout(.seconds(10), "the handler to see the cancellation") {
        await probe.nextCancellation()
      }
      #expect(event?.method.method == "FullDuplexCall")
      #expect(event?.source == .rpcCancellationHandle)
    }
  }

  @Test("timeout_on_sleeping_server: a deadline that passes answers deadlineExceeded and cancels the handler")
  func timeoutOnSleepingServer() async throws {
    let probe = CancellationProbe()
    try await self.withInterop(probe: probe) { stub in
      var options = CallOptions.defaults
      // Long enough for the first, immediate response to arrive (which proves the handler is
      // running, even on a loaded machine), short enough to end in the second, half-hour pause.
      options.timeout = .seconds(6)
      let (firstResponse, firstResponseContinuation) = AsyncStream.makeStream(of: Int.self)
      let error = await #expect(throws: RPCError.self) {
        try await stub.fullDuplexCall(options: options) { writer in
          try await writer.write(
            .with {
              $0.responseParameters = [
                .with { $0.size = 1 },
                .with { $0.size = 1; $0.intervalUs = 2_000_000_000 },
              ]
              $0.payload.body = Data(count: 27_182)
            }
          )
        } onResponse: { response in
          for try await message in response.messages {
            firstResponseContinuation.yield(message.payload.body.count)
          }
        }
      }
      firstResponseContinuation.finish()
      #expect(error?.code == .deadlineExceeded)
      var responses: [Int] = []
      for await size in firstResponse { responses.append(size) }
      // Without the first response the handler may never have started (the client's reset can
      // beat it), and there would be no cancellation to wait for.
      try #require(responses == [1], "the handler answered the first response before the deadline")
      let event = try await withTimeout(.seconds(10), "the handler to see the deadline") {
        await probe.nextCancellation()
      }
      #expect(event?.method.method == "FullDuplexCall")
      #expect(event?.source == .rpcCancellationHandle)
    }
  }
}
