import Foundation
import GRPCCore
import RedressIntake
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

@Suite("Metrics")
struct MetricsTests {
  static func scrape(port: Int, token: String?, path: String = "/metrics") async throws -> MetricsScrape {
    try await MetricsScrape.get(port: port, trustRoot: try IntakeTestPKI.nio(IntakeTestPKI.shared.ca), token: token, path: path)
  }

  @Test("/metrics counts submissions by outcome, RPCs by method and code, and group commits; it needs a metrics token over TLS")
  func scrapeAfterSubmissions() async throws {
    try await IntakeHarness.run(clock: SystemWallClock(), configure: {
      $0.server.metrics = MetricsListener(host: "127.0.0.1", port: 0)
    }) { harness in
      let port = try #require(try await harness.app.server.metricsPort)
      let token = bearer(TestIdentities.toolA.token)
      try await harness.withClient { intake in
        let report = validReport(now: Date())
        _ = try await intake.submitIncident(submitRequest("m-1", report), metadata: token)
        _ = try await intake.submitIncident(submitRequest("m-2", validReport(title: "Second", now: Date())), metadata: token)
        let replay = try await intake.submitIncident(submitRequest("m-1", report), metadata: token)
        #expect(replay.replayed)
        var invalid = report
        invalid.title = ""
        await #expect(throws: RPCError.self) {
          _ = try await intake.submitIncident(submitRequest("m-3", invalid), metadata: token)
        }
        await #expect(throws: RPCError.self) {
          _ = try await intake.submitIncident(submitRequest("m-4", report), metadata: bearer("not-a-token"))
        }
      }

      let scrape = try await Self.scrape(port: port, token: TestIdentities.scraper.token)
      #expect(scrape.status == 200)
      #expect(scrape.contentType.hasPrefix("text/plain; version=0.0.4"))
      let method = "redress.v1.Intake/SubmitIncident"
      #expect(scrape.value(#"redress_rpc_requests_total{method="\#(method)",code="ok"}"#) == 3)
      #expect(scrape.value(#"redress_rpc_requests_total{method="\#(method)",code="invalidArgument"}"#) == 1)
      #expect(scrape.value(#"redress_rpc_requests_total{method="\#(method)",code="unauthenticated"}"#) == 1)
      #expect(scrape.value(#"redress_rpc_duration_seconds_count{method="\#(method)",code="ok"}"#) == 3)
      #expect(scrape.value(#"redress_intake_incidents_accepted_total{priority="p4",category="wrongItem"}"#) == 2)
      #expect(scrape.value("redress_intake_submissions_replayed_total") == 1)
      #expect(scrape.value("redress_intake_validation_failures_total") == 1)
      // Three submissions reached the store (the replay too: it is answered from its key), in one to three commits.
      let batches = try #require(scrape.value("redress_intake_commit_batch_size_count"))
      #expect((1...3).contains(batches))
      #expect(scrape.value("redress_intake_commit_batch_size_sum") == 3)
      #expect(scrape.value(#"redress_intake_commit_duration_seconds_count{outcome="committed"}"#) == batches)
      // Read at the scrape: both incidents wait in the outbox (no remediation is configured), received just now.
      #expect(scrape.value("redress_intake_outbox_backlog") == 2)
      let age = try #require(scrape.value("redress_intake_outbox_oldest_age_seconds"))
      #expect(age >= 0 && age < 600)
      // No ids, tenants or identities in any label.
      #expect(!scrape.body.contains("acme"))
      #expect(!scrape.body.contains("inc_"))
      #expect(!scrape.body.contains(TestIdentities.toolA.name))

      // Authentication: none, unknown, and a known identity without the metrics role.
      #expect(try await Self.scrape(port: port, token: nil).status == 401)
      #expect(try await Self.scrape(port: port, token: "not-a-token").status == 401)
      let forbidden = try await Self.scrape(port: port, token: TestIdentities.toolA.token)
      #expect(forbidden.status == 403)
      #expect(forbidden.body.contains("metrics role"))
      #expect(try await Self.scrape(port: port, token: TestIdentities.scraper.token, path: "/other").status == 404)
    }
  }

  @Test("metrics are off unless configured")
  func offByDefault() async throws {
    let port = try await IntakeHarness.run { harness in try await harness.app.server.metricsPort }
    #expect(port == nil)
  }
}
