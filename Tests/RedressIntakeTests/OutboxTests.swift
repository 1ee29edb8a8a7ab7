import Foundation
import GRPCCore
import RedressIntake
import RedressSchemas
import RedressService
import RedressWire
import Testing
import RedressTestSupport

@Suite("Hand-off outbox")
struct OutboxTests {
  let token = bearer(TestIdentities.toolA.token)

  /// Points intake's outbox at 127.0.0.1:`port` with mutual TLS (intake's client certificate) and short
  /// backoffs, so tests see retries within seconds.
  static func remediation(at port: Int) -> (inout IntakeConfig) throws -> Void {
    { config in
      config.outbox.remediation = .init(
        host: "127.0.0.1", port: port,
        security: try IntakeTestPKI.shared.clientSecurity(presenting: IntakeTestPKI.shared.intakeService))
      config.outbox.backoff = .init(initial: .milliseconds(50), maximum: .milliseconds(400), multiplier: 2, jitter: 0.2)
      config.outbox.callTimeout = .seconds(10)
    }
  }

  /// Waits (on the store's outbox doorbell, not by polling) until no incident waits for delivery.
  static func waitUntilOutboxEmpty(_ store: any IntakeStorage) async throws {
    try await withTimeout(30, "the outbox to drain") {
      while try await store.pendingDeliveryCount() > 0 {
        await store.outboxChanged.wait()
      }
    }
  }

  @Test("with remediation up, an accepted incident is handed over and records its remedy id", arguments: Backend.allCases)
  func delivered(backend: Backend) async throws {
    let remediation = TestRemediationService()
    let port = try await unusedPort()
    try await withTestRemediation(remediation, port: port) {
      try await IntakeHarness.run(backend, clock: SystemWallClock(), configure: Self.remediation(at: port)) { harness in
        try await harness.withClient { intake in
          let submitted = try await intake.submitIncident(submitRequest("k", validReport()), metadata: self.token)
          try await withTimeout(30, "the remedy") { await remediation.waitForRemedies(1) }
          try await Self.waitUntilOutboxEmpty(harness.app.store)
          let incident = try await intake.getIncident(.with { $0.incidentID = submitted.incident.id }, metadata: self.token)
          #expect(incident.status == .inRemediation)
          #expect(incident.remedyID == remediation.remedies[submitted.incident.id])
          #expect(remediation.calls[submitted.incident.id] == 1)
        }
      }
    }
  }

  @Test("while remediation is down incidents are accepted and await remediation; once it starts each is delivered once", arguments: Backend.allCases)
  func remediationDownThenUp(backend: Backend) async throws {
    let remediation = TestRemediationService()
    let port = try await unusedPort()
    try await IntakeHarness.run(backend, clock: SystemWallClock(), configure: Self.remediation(at: port)) { harness in
      try await harness.withClient { intake in
        // Remediation is down: every submit is still accepted.
        var ids: [String] = []
        for index in 0..<12 {
          let response = try await intake.submitIncident(
            submitRequest("down-\(index)", validReport(customerID: "c\(index)")), metadata: self.token)
          #expect(response.incident.status == .awaitingRemediation)
          ids.append(response.incident.id)
        }
        let bulk = try await intake.submitIncidents(metadata: self.token) { writer in
          try await writer.write(contentsOf: (0..<8).map { submitRequest("bulk-\($0)", validReport()) })
        }
        #expect(bulk.accepted == 8)
        ids += bulk.results.map(\.accepted.incident.id)
        let listed = try await intake.listIncidents(.with { $0.statuses = [.awaitingRemediation] }, metadata: self.token)
        #expect(Set(listed.incidents.map(\.id)) == Set(ids))
        #expect(try await harness.app.store.pendingDeliveryCount() == 20)
        let earliest = try #require(listed.incidents.map { $0.receivedAt.date }.min())
        let oldest = try #require(try await harness.app.store.oldestPendingReceipt())
        #expect(abs(oldest.timeIntervalSince(earliest)) < 0.002)

        // Remediation starts: delivery resumes by itself.
        try await withTestRemediation(remediation, port: port) {
          try await withTimeout(60, "every remedy") { await remediation.waitForRemedies(20) }
          try await Self.waitUntilOutboxEmpty(harness.app.store)
        }
        #expect(Set(remediation.remedies.keys) == Set(ids))
        #expect(remediation.calls.values.allSatisfy { $0 == 1 }, "calls per incident: \(remediation.calls)")
        #expect(try await harness.app.store.oldestPendingReceipt() == nil)
        let after = try await intake.listIncidents(.with { $0.pageSize = 500 }, metadata: self.token)
        #expect(after.incidents.count == 20)
        for incident in after.incidents {
          #expect(incident.status == .inRemediation)
          #expect(incident.remedyID == remediation.remedies[incident.id])
        }
      }
    }
  }

  @Test("an incident remediation refuses is retried with backoff without holding up the others", arguments: Backend.allCases)
  func refusedIncident(backend: Backend) async throws {
    let remediation = TestRemediationService(refusingTitle: "refused")
    let port = try await unusedPort()
    try await withTestRemediation(remediation, port: port) {
      try await IntakeHarness.run(backend, clock: SystemWallClock(), configure: Self.remediation(at: port)) { harness in
        try await harness.withClient { intake in
          let refused = try await intake.submitIncident(
            submitRequest("refused", validReport(title: "refused")), metadata: self.token)
          var accepted: [String] = []
          for index in 0..<5 {
            accepted.append(
              try await intake.submitIncident(submitRequest("ok-\(index)", validReport()), metadata: self.token).incident.id)
          }
          try await withTimeout(30, "the other remedies") { await remediation.waitForRemedies(5) }
          // The refused one is tried again (backoff 50-400 ms) while the others are already through.
          try await withTimeout(30, "a retry of the refused incident") {
            while try await harness.app.store.pendingDeliveryCount() != 1 || (remediation.calls[refused.incident.id] ?? 0) < 2 {
              await harness.app.store.outboxChanged.wait()
            }
          }
          #expect(Set(remediation.remedies.keys) == Set(accepted))
          let stillWaiting = try await intake.getIncident(.with { $0.incidentID = refused.incident.id }, metadata: self.token)
          #expect(stillWaiting.status == .awaitingRemediation)
          #expect(stillWaiting.remedyID.isEmpty)
        }
      }
    }
  }

  @Test("after an outage, delivery resumes within about a second of remediation answering, however far backoff grew (issue 11, finding 6)", arguments: Backend.allCases)
  func recoveryIsPrompt(backend: Backend) async throws {
    let remediation = TestRemediationService()
    let port = try await unusedPort()
    let configure: (inout IntakeConfig) throws -> Void = { config in
      try Self.remediation(at: port)(&config)
      // Production-like growth: before the fix the outbox paused 2, 4, 8 s... and recovered only at its next pause's end.
      config.outbox.backoff = .init(initial: .seconds(2), maximum: .seconds(60), multiplier: 2, jitter: 0)
    }
    try await IntakeHarness.run(backend, clock: SystemWallClock(), configure: configure) { harness in
      try await harness.withClient { intake in
        for index in 0..<3 {
          _ = try await intake.submitIncident(submitRequest("outage-\(index)", validReport()), metadata: self.token)
        }
        try await Task.sleep(for: .seconds(7))
        let started = ContinuousClock.now
        try await withTestRemediation(remediation, port: port) {
          try await withTimeout(30, "every remedy") { await remediation.waitForRemedies(3) }
        }
        let recovery = started.duration(to: .now)
        // The probe interval is 1 s; the margin is for a loaded machine. The old schedule needed ~7 s here.
        #expect(recovery < .seconds(4), "delivery resumed \(recovery) after remediation came back")
      }
    }
  }

  @Test("resourceExhausted is back-pressure: the outbox waits the retry-after remediation asks, then delivers (issue 11, finding 6)", arguments: Backend.allCases)
  func backPressure(backend: Backend) async throws {
    let remediation = TestRemediationService(busyCalls: 2, retryAfterMS: 700)
    let port = try await unusedPort()
    try await withTestRemediation(remediation, port: port) {
      try await IntakeHarness.run(backend, clock: SystemWallClock(), configure: Self.remediation(at: port)) { harness in
        try await harness.withClient { intake in
          let submitted = try await intake.submitIncident(submitRequest("busy", validReport()), metadata: self.token)
          try await withTimeout(30, "the remedy") { await remediation.waitForRemedies(1) }
          let times = remediation.callTimes
          #expect(times.count == 3, "two refusals, then the delivery")
          for (earlier, later) in zip(times, times.dropFirst()) {
            // The test backoff is 50-400 ms: only honouring retry-after-ms waits this long.
            #expect(earlier.duration(to: later) >= .milliseconds(650), "retried after \(earlier.duration(to: later))")
          }
          #expect(remediation.calls[submitted.incident.id] == 1)
        }
      }
    }
  }

  @Test("capped exponential backoff grows from the initial delay, stays within jitter and never passes the cap")
  func backoff() {
    let backoff = IntakeConfig.Outbox.Backoff(
      initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2, jitter: 0.2)
    for attempt in 1...12 {
      let expected = min(0.1 * pow(2, Double(attempt - 1)), 2)
      for _ in 0..<20 {
        let seconds = backoffSeconds(backoff, attempt: attempt)
        #expect(seconds >= expected * 0.8 - 0.001 && seconds <= expected * 1.2 + 0.001, "attempt \(attempt): \(seconds)")
      }
    }
  }
}

private func backoffSeconds(_ backoff: IntakeConfig.Outbox.Backoff, attempt: Int) -> Double {
  let (seconds, attoseconds) = backoff.delay(attempt: attempt).components
  return Double(seconds) + Double(attoseconds) / 1e18
}
