import Foundation
import NIOSSL
import RedressSchemas
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
}
