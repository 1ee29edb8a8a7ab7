import Foundation
import GRPCCore
import RedressIntake
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

@Suite("Who may do what")
struct AccessTests {
  @Test("health checks need no credentials and report serving")
  func health() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withGRPCClient { client in
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        let response = try await health.check(.init())
        #expect(response.status == .serving)
      }
    }
  }

  @Test("a call without credentials is unauthenticated")
  func noCredentials() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(submitRequest("k", validReport()))
        }
        #expect(error.code == .unauthenticated)
        #expect(try await harness.app.store.incidentCount() == 0)
      }
    }
  }

  @Test("an unknown bearer token is unauthenticated")
  func unknownToken() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(.init(), metadata: bearer("not-a-token"))
        }
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains("not recognised"))
      }
    }
  }

  @Test("a client certificate mapped to no identity is unauthenticated")
  func unmappedCertificate() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient(presenting: IntakeTestPKI.shared.unmapped) { intake in
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(submitRequest("k", validReport()))
        }
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains("not mapped"))
      }
    }
  }

  @Test("a mapped client certificate authenticates and becomes reported_by")
  func certificateIdentity() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient(presenting: IntakeTestPKI.shared.certTool) { intake in
        let response = try await intake.submitIncident(submitRequest("k", validReport()))
        #expect(response.incident.reportedBy == "cert-tool")
        #expect(response.incident.tenant == "acme")
      }
    }
  }

  @Test("an identity without the submit role may not submit, without the read role may not read")
  func missingRole() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        let submitError = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(
            submitRequest("k", validReport()), metadata: bearer(TestIdentities.readerOnly.token))
        }
        #expect(submitError.code == .permissionDenied)
        #expect(submitError.message.contains("submit"))
        let bulkError = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncidents(metadata: bearer(TestIdentities.readerOnly.token)) { writer in
            try await writer.write(submitRequest("k", validReport()))
          }
        }
        #expect(bulkError.code == .permissionDenied)

        let submitted = try await intake.submitIncident(
          submitRequest("k", validReport()), metadata: bearer(TestIdentities.submitOnly.token))
        let readError = try await #require(throws: RPCError.self) {
          _ = try await intake.getIncident(
            .with { $0.incidentID = submitted.incident.id }, metadata: bearer(TestIdentities.submitOnly.token))
        }
        #expect(readError.code == .permissionDenied)
        #expect(readError.message.contains("read"))
        let listError = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(.init(), metadata: bearer(TestIdentities.submitOnly.token))
        }
        #expect(listError.code == .permissionDenied)
        // The reader of the same tenant can read it.
        let read = try await intake.getIncident(
          .with { $0.incidentID = submitted.incident.id }, metadata: bearer(TestIdentities.readerOnly.token))
        #expect(read.id == submitted.incident.id)
      }
    }
  }

  @Test("another tenant's incident is not found, exactly like an unknown id, and is never listed", arguments: Backend.allCases)
  func tenantIsolation(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        let acme = try await intake.submitIncident(
          submitRequest("k", validReport()), metadata: bearer(TestIdentities.toolA.token))
        let foreign = try await #require(throws: RPCError.self) {
          _ = try await intake.getIncident(
            .with { $0.incidentID = acme.incident.id }, metadata: bearer(TestIdentities.globex.token))
        }
        #expect(foreign.code == .notFound)
        let unknown = try await #require(throws: RPCError.self) {
          _ = try await intake.getIncident(
            .with { $0.incidentID = "inc_DOESNOTEXIST" }, metadata: bearer(TestIdentities.globex.token))
        }
        #expect(unknown.code == .notFound)
        #expect(
          foreign.message.replacingOccurrences(of: acme.incident.id, with: "X")
            == unknown.message.replacingOccurrences(of: "inc_DOESNOTEXIST", with: "X"))
        let globexList = try await intake.listIncidents(.init(), metadata: bearer(TestIdentities.globex.token))
        #expect(globexList.incidents.isEmpty)
        let acmeList = try await intake.listIncidents(.init(), metadata: bearer(TestIdentities.toolB.token))
        #expect(acmeList.incidents.map(\.id) == [acme.incident.id])
      }
    }
  }

  @Test("over its rate limit an identity gets resourceExhausted with retry-after-ms, others are unaffected")
  func rateLimit() async throws {
    let clock = ManualWallClock(start: Date())
    try await IntakeHarness.run(clock: clock, rateLimit: .init(ratePerSecond: 1, burst: 2)) { harness in
      try await harness.withClient { intake in
        let tokenA = bearer(TestIdentities.toolA.token)
        _ = try await intake.listIncidents(.init(), metadata: tokenA)
        _ = try await intake.listIncidents(.init(), metadata: tokenA)
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(submitRequest("k", validReport(now: clock.now())), metadata: tokenA)
        }
        #expect(error.code == .resourceExhausted)
        let retryAfter = error.metadata[stringValues: "retry-after-ms"].first(where: { _ in true })
        #expect(retryAfter == "1000")
        #expect(try await harness.app.store.incidentCount() == 0)
        // Another identity has its own bucket.
        _ = try await intake.listIncidents(.init(), metadata: bearer(TestIdentities.toolB.token))
        // After the wait, the call goes through.
        clock.advance(by: 1)
        let accepted = try await intake.submitIncident(submitRequest("k", validReport(now: clock.now())), metadata: tokenA)
        #expect(!accepted.replayed)
      }
    }
  }
}
