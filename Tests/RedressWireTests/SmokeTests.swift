import GRPCCore
import Testing
@testable import RedressWire

@Suite("Smoke")
struct SmokeTests {
  @Test("an empty unary call round-trips over TLS")
  func emptyUnary() async throws {
    try await withWireServer(services: [InteropTestService()]) { server in
      try await server.withClient { client in
        let stub = Grpc_Testing_TestService.Client(wrapping: client)
        let response = try await stub.emptyCall(Grpc_Testing_Empty())
        #expect(response == Grpc_Testing_Empty())
      }
    }
  }
}
