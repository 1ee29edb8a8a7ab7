import GRPCCore
import RedressService
import RedressTestSupport
import Testing

@Suite("Request ids")
struct RequestIDTests {
  @Test("the server answers with the caller's x-request-id, or one of its own when the caller's is unusable or absent")
  func echoed() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        var metadata = bearer(TestIdentities.toolA.token)
        metadata.addString("caller-id-42", forKey: "x-request-id")
        let echoed = try await intake.submitIncident(submitRequest("r-1", validReport()), metadata: metadata) { response in
          response.metadata[stringValues: "x-request-id"].first { _ in true }
        }
        #expect(echoed == "caller-id-42")

        var unusable = bearer(TestIdentities.toolA.token)
        unusable.addString("not an id", forKey: "x-request-id")
        let made = try await intake.submitIncident(submitRequest("r-2", validReport()), metadata: unusable) { response in
          response.metadata[stringValues: "x-request-id"].first { _ in true }
        }
        #expect(made?.count == 16)

        // A refused call (unknown token) carries one in its error.
        do {
          _ = try await intake.submitIncident(submitRequest("r-3", validReport()), metadata: bearer("unknown"))
          Issue.record("an unknown token was accepted")
        } catch let error as RPCError {
          #expect(error.code == .unauthenticated)
          #expect(error.metadata[stringValues: "x-request-id"].first { _ in true }?.count == 16)
        }
      }
    }
  }
}
