import Foundation
import GRPCCore
import RedressIntake
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

@Suite("Submitting incidents")
struct SubmissionTests {
  let tokenA = bearer(TestIdentities.toolA.token)
  let tokenB = bearer(TestIdentities.toolB.token)

  @Test("an accepted incident is stored, triaged, attributed to the authenticated identity and awaiting remediation", arguments: Backend.allCases)
  func accepted(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        let report = validReport()
        let response = try await intake.submitIncident(submitRequest("k-1", report), metadata: self.tokenA)
        let incident = response.incident
        #expect(!response.replayed)
        #expect(incident.id.hasPrefix("inc_"))
        #expect(incident.tenant == "acme")
        #expect(incident.reportedBy == TestIdentities.toolA.name)
        #expect(incident.report == report)
        #expect(incident.triage.priority == .p4)
        #expect(!incident.triage.reasons.isEmpty)
        #expect(incident.status == .awaitingRemediation)
        #expect(incident.clientsAffected == 1)
        #expect(incident.reportsInGroup == 1)
        let fetched = try await intake.getIncident(.with { $0.incidentID = incident.id }, metadata: self.tokenA)
        #expect(fetched == incident)
      }
    }
  }

  @Test("a retried submit returns the first incident, flagged as a replay", arguments: Backend.allCases)
  func replay(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        let request = submitRequest("retry-me", validReport())
        let first = try await intake.submitIncident(request, metadata: self.tokenA)
        let second = try await intake.submitIncident(request, metadata: self.tokenA)
        #expect(second.replayed)
        #expect(!first.replayed)
        #expect(second.incident.id == first.incident.id)
        #expect(try await harness.app.store.incidentCount() == 1)
      }
    }
  }

  @Test("without occurred_at intake dates the report when it receives it, and a retry without it replays", arguments: Backend.allCases)
  func occurredAtDefaultsToReceipt(backend: Backend) async throws {
    let clock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000))
    try await IntakeHarness.run(backend, clock: clock) { harness in
      try await harness.withClient { intake in
        var report = validReport()
        report.clearOccurredAt()
        let request = submitRequest("undated", report)
        let first = try await intake.submitIncident(request, metadata: self.tokenA)
        #expect(first.incident.report.occurredAt.date == clock.now())
        clock.advance(by: 60)
        let second = try await intake.submitIncident(request, metadata: self.tokenA)
        #expect(second.replayed)
        #expect(second.incident.id == first.incident.id)
        #expect(second.incident.report.occurredAt == first.incident.report.occurredAt)
        // Filling it in on the retry is a different report.
        var dated = request
        dated.report.occurredAt = .init(date: clock.now())
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(dated, metadata: self.tokenA)
        }
        #expect(error.code == .alreadyExists)
      }
    }
  }

  @Test("the same key with a different report answers alreadyExists naming the original incident", arguments: Backend.allCases)
  func conflict(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        let first = try await intake.submitIncident(submitRequest("k", validReport()), metadata: self.tokenA)
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(
            submitRequest("k", validReport(title: "Another mistake")), metadata: self.tokenA)
        }
        #expect(error.code == .alreadyExists)
        #expect(error.message.contains(first.incident.id))
        #expect(try await harness.app.store.incidentCount() == 1)
      }
    }
  }

  @Test("idempotency keys are scoped to the submitting identity", arguments: Backend.allCases)
  func scopedPerIdentity(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        let request = submitRequest("shared-key", validReport())
        let fromA = try await intake.submitIncident(request, metadata: self.tokenA)
        let fromB = try await intake.submitIncident(request, metadata: self.tokenB)
        #expect(!fromB.replayed)
        #expect(fromB.incident.id != fromA.incident.id)
        #expect(fromB.incident.reportedBy == TestIdentities.toolB.name)
        #expect(try await harness.app.store.incidentCount() == 2)
      }
    }
  }

  @Test("keys are kept for the retention period and forgotten after it", arguments: Backend.allCases)
  func retention(backend: Backend) async throws {
    let clock = ManualWallClock(start: Date())
    try await IntakeHarness.run(backend, clock: clock) { harness in
      try await harness.withClient { intake in
        let request = submitRequest("weekly", validReport(now: clock.now()))
        let first = try await intake.submitIncident(request, metadata: self.tokenA)
        clock.advance(by: 7 * 24 * 3600 - 60)
        let withinRetention = try await intake.submitIncident(request, metadata: self.tokenA)
        #expect(withinRetention.replayed)
        #expect(withinRetention.incident.id == first.incident.id)
        clock.advance(by: 120)
        let afterRetention = try await intake.submitIncident(request, metadata: self.tokenA)
        #expect(!afterRetention.replayed)
        #expect(afterRetention.incident.id != first.incident.id)
        #expect(try await harness.app.store.purgeExpiredIdempotencyKeys() == 0)
        clock.advance(by: 8 * 24 * 3600)
        #expect(try await harness.app.store.purgeExpiredIdempotencyKeys() == 1)
      }
    }
  }

  @Test("a grouping key attaches later reports to one root that counts clients and reports", arguments: Backend.allCases)
  func grouping(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        func report(_ customer: String, demand: Int64) -> Redress_V1_IncidentReport {
          validReport(customerID: customer) {
            $0.groupingKey = "batch-2026-11-red-mugs"
            $0.demand.amount.amountMinor = demand
          }
        }
        let root = try await intake.submitIncident(submitRequest("g1", report("c1", demand: 100)), metadata: self.tokenA)
        let second = try await intake.submitIncident(submitRequest("g2", report("c2", demand: 200)), metadata: self.tokenA)
        let third = try await intake.submitIncident(submitRequest("g3", report("c2", demand: 300)), metadata: self.tokenB)
        let unrelated = try await intake.submitIncident(submitRequest("g4", validReport(customerID: "c9")), metadata: self.tokenA)
        // Another tenant's identical grouping key starts its own group.
        let globex = try await intake.submitIncident(
          submitRequest("g1", report("c1", demand: 100)), metadata: bearer(TestIdentities.globex.token))

        #expect(root.incident.groupRootID.isEmpty)
        #expect(second.incident.groupRootID == root.incident.id)
        #expect(third.incident.groupRootID == root.incident.id)
        #expect(unrelated.incident.groupRootID.isEmpty)
        #expect(globex.incident.groupRootID.isEmpty)
        #expect(globex.incident.clientsAffected == 1)
        // Each report keeps its own client and demand.
        #expect(second.incident.report.customer.id == "c2")
        #expect(third.incident.report.demand.amount.amountMinor == 300)

        let rootNow = try await intake.getIncident(.with { $0.incidentID = root.incident.id }, metadata: self.tokenA)
        #expect(rootNow.reportsInGroup == 3)
        #expect(rootNow.clientsAffected == 2)
        let unrelatedNow = try await intake.getIncident(.with { $0.incidentID = unrelated.incident.id }, metadata: self.tokenA)
        #expect(unrelatedNow.reportsInGroup == 1)

        // A replay does not count twice.
        let replay = try await intake.submitIncident(submitRequest("g2", report("c2", demand: 200)), metadata: self.tokenA)
        #expect(replay.replayed)
        let rootAfterReplay = try await intake.getIncident(.with { $0.incidentID = root.incident.id }, metadata: self.tokenA)
        #expect(rootAfterReplay.reportsInGroup == 3)
      }
    }
  }

  @Test("a bulk submission answers each item on its own and one bad item does not fail the rest", arguments: Backend.allCases)
  func bulk(backend: Backend) async throws {
    try await IntakeHarness.run(backend) { harness in
      try await harness.withClient { intake in
        _ = try await intake.submitIncident(submitRequest("b-existing", validReport()), metadata: self.tokenA)
        let requests = [
          submitRequest("b-1", validReport(customerID: "c1")),
          submitRequest("b-2", validReport { $0.title = "" }),
          submitRequest("b-existing", validReport()),
          submitRequest("b-existing", validReport(title: "different")),
          submitRequest("b-3", validReport(customerID: "c3")),
          submitRequest("b-1", validReport(customerID: "c1")),
        ]
        let response = try await intake.submitIncidents(metadata: self.tokenA) { writer in
          try await writer.write(contentsOf: requests)
        }
        #expect(response.results.map(\.index) == [0, 1, 2, 3, 4, 5])
        #expect(response.results.map(\.idempotencyKey) == requests.map(\.idempotencyKey))
        #expect(response.accepted == 4)
        #expect(response.rejected == 2)
        let outcomes = response.results.map(\.outcome)
        guard case .accepted(let first) = outcomes[0], case .error(let invalid) = outcomes[1],
          case .accepted(let replayed) = outcomes[2], case .error(let conflict) = outcomes[3],
          case .accepted(let third) = outcomes[4], case .accepted(let inBatchReplay) = outcomes[5]
        else {
          Issue.record("unexpected outcomes \(outcomes)")
          return
        }
        #expect(!first.replayed)
        #expect(invalid.code == 3)
        #expect(invalid.violations.map(\.field) == ["report.title"])
        #expect(replayed.replayed)
        #expect(conflict.code == 6)
        #expect(conflict.message.contains(replayed.incident.id))
        #expect(third.incident.report.customer.id == "c3")
        #expect(inBatchReplay.replayed)
        #expect(inBatchReplay.incident.id == first.incident.id)
        #expect(try await harness.app.store.incidentCount() == 3)
      }
    }
  }

  @Test("a bulk call over the item limit fails as a whole", arguments: Backend.allCases)
  func bulkLimit(backend: Backend) async throws {
    try await IntakeHarness.run(backend, configure: { $0.limits.maxItemsPerBulkCall = 3 }) { harness in
      try await harness.withClient { intake in
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncidents(metadata: self.tokenA) { writer in
            try await writer.write(contentsOf: (0..<4).map { submitRequest("over-\($0)", validReport()) })
          }
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("at most 3 items"))
      }
    }
  }
}
