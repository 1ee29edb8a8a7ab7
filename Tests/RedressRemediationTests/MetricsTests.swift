import Foundation
import NIOSSL
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

@Suite("Remediation metrics")
struct RemediationMetricsTests {
  @Test(
    "a scripted remedy moves the counters on /metrics: opened, each action by stage, the escalation, the RPCs; the open and overdue gauges read the store",
    arguments: Backend.allCases)
  func scriptedRemedy(backend: Backend) async throws {
    try await backend.withDatabase { database in
    try await RemediationHarness.run(database: database, serveMetrics: true) { harness in
      let incident = Incidents.make()
      var walk = try await Walk.open(harness, incident)
      // Opening the same incident again (intake's retry) is not a second remedy.
      _ = try await harness.open(incident)
      try await walk.toPropose()
      // Nobody offers a fix for a long time: the deadline passes and escalates once.
      harness.clock.advance(by: 30 * 24 * 3_600)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])

      let port = try #require(try await harness.app.server.metricsPort)
      let ca = try NIOSSLCertificate(bytes: RemediationTestPKI.shared.ca.certificateDER(), format: .der)
      let scrape = try await MetricsScrape.get(port: port, trustRoot: ca, token: People.scout.token)
      #expect(scrape.status == 200)
      #expect(scrape.value(#"redress_remediation_remedies_opened_total{stage="investigate"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_actions_total{action="investigate",stage="acknowledge"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_actions_total{action="apologize",stage="propose"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_escalations_total{stage="propose"}"#) == 1)
      #expect(scrape.value(#"redress_rpc_requests_total{method="redress.v1.Remediation/OpenRemedy",code="ok"}"#) == 2)
      #expect(scrape.value(#"redress_rpc_requests_total{method="redress.v1.Remediation/Act",code="ok"}"#) == 2)
      #expect(scrape.value(#"redress_remediation_remedies_open{stage="propose"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_remedies_overdue{stage="propose"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_remedies_open{stage="investigate"}"#) == 0)
      #expect(!scrape.body.contains(walk.remedy.id))
      #expect(!scrape.body.contains("acme"))

      let refused = try await MetricsScrape.get(port: port, trustRoot: ca, token: People.olivia.token)
      #expect(refused.status == 403)
    }
    }
  }

  @Test("a remedy walked to the end records the time to acknowledge and to resolve, the money issued and the follow-up outcome")
  func playbookMeasures() async throws {
    try await RemediationHarness.run(.sqlite) { harness in
      var walk = try await Walk.open(harness)
      harness.clock.advance(by: 600)
      try await walk.act(Do.receipt())  // acknowledged ten minutes after opening
      try await walk.toLearn()
      try await walk.act(Do.learn())
      let metrics = harness.app.server.metrics
      let scrape = MetricsScrape(status: 200, contentType: "", body: String(decoding: metrics.exposition(), as: UTF8.self))
      #expect(scrape.value(#"redress_remediation_time_to_acknowledge_seconds_count{priority="p2"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_time_to_acknowledge_seconds_sum{priority="p2"}"#) == 600)
      // Ten minutes fall in the 15-minute bucket, not the 5-minute one.
      #expect(scrape.value(#"redress_remediation_time_to_acknowledge_seconds_bucket{priority="p2",le="300.0"}"#) == 0)
      #expect(scrape.value(#"redress_remediation_time_to_acknowledge_seconds_bucket{priority="p2",le="900.0"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_time_to_resolve_seconds_count{priority="p2"}"#) == 1)
      // The walk moved the clock three days past the fix for the follow-up call.
      #expect(try #require(scrape.value(#"redress_remediation_time_to_resolve_seconds_sum{priority="p2"}"#)) >= 3 * 86_400)
      #expect(scrape.value(#"redress_remediation_issued_minor_total{kind="compensation",currency="USD"}"#) == 3_000)
      #expect(scrape.value(#"redress_remediation_issued_minor_total{kind="goodwill",currency="USD"}"#) == 2_000)
      #expect(scrape.value(#"redress_remediation_follow_ups_total{outcome="satisfied"}"#) == 1)
      #expect(scrape.value(#"redress_remediation_remedies_closed_total{status="resolved"}"#) == 1)
    }
  }

  @Test("the wire's connections, streams, bytes, resets and goaways are counted, with bounded labels")
  func wireMetrics() async throws {
    let metrics = try await RemediationHarness.run(database: .sqlite(try TemporaryDirectory())) { harness -> RedressMetrics in
      let remedy = try await harness.open()
      // A watch the client cancels: its stream is reset (CANCEL) by the client.
      let watcher = Watcher()
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run(harness.desk(People.olivia), remedyID: remedy.id) }
        _ = try await watcher.next(1)
        group.cancelAll()
      }
      let scrape = MetricsScrape(
        status: 200, contentType: "", body: String(decoding: harness.app.server.metrics.exposition(), as: UTF8.self))
      // The harness's two clients (a token client and intake's certificate client).
      #expect(scrape.value("redress_wire_connections_total") == 2)
      #expect(scrape.value("redress_wire_connections_open") == 2)
      #expect(try #require(scrape.value("redress_wire_streams_total")) >= 2)
      #expect(try #require(scrape.value(#"redress_wire_bytes_total{direction="in"}"#)) > 100)
      #expect(try #require(scrape.value(#"redress_wire_bytes_total{direction="out"}"#)) > 100)
      let reset = try await withTimeout(.seconds(30), "the client's reset counted") {
        while true {
          let body = String(decoding: harness.app.server.metrics.exposition(), as: UTF8.self)
          let now = MetricsScrape(status: 200, contentType: "", body: body)
          if let value = now.value(#"redress_wire_resets_total{direction="received",code="CANCEL"}"#) { return value }
          try await Task.sleep(for: .milliseconds(20))
        }
      }
      #expect(reset == 1)
      return harness.app.server.metrics
    }
    // The clients closed first, each saying goodbye (GOAWAY NO_ERROR); no connection is left open.
    let after = MetricsScrape(status: 200, contentType: "", body: String(decoding: metrics.exposition(), as: UTF8.self))
    #expect(after.value(#"redress_wire_goaway_total{direction="received",code="NO_ERROR"}"#) == 2)
    #expect(after.value("redress_wire_connections_open") == 0)
  }
}
