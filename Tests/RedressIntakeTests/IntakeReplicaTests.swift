import Foundation
import GRPCCore
import Logging
import PostgresNIO
@testable import RedressIntake
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

/// Several intake replicas on one real PostgreSQL: each replica is a store with its own connection pool, as in
/// separate processes (the multi-process kill -9 test is in CrashSafetyTests).
@Suite("Intake replicas on PostgreSQL")
struct IntakeReplicaTests {
  let acme = Identity(name: "tool-a", tenant: "acme", roles: [.submit])

  func submission(_ key: String, customer: String = "c1", title: String = "Blue mug shipped instead of red", group: String = "") throws -> Submission {
    let report = validReport(customerID: customer, title: title) { $0.groupingKey = group }
    return try Submission(
      identity: self.acme, idempotencyKey: key, report: report, triage: Triager(policy: .defaults).triage(report))
  }

  /// Runs `body` with `count` replicas' stores on one new, migrated database.
  func withReplicas(
    _ count: Int,
    clock: any WallClock = SystemWallClock(),
    _ body: @escaping @Sendable ([PostgresIntakeStore]) async throws -> Void
  ) async throws {
    try await TestPostgres.withDatabase { url in
      let settings = try PostgresSettings(url: url, password: nil)
      var logger = Logger(label: "intake-replica-test")
      logger.logLevel = .warning
      try await IntakeApplication.migrate(settings, logger: logger)
      let clients = try (0..<count).map { _ in try settings.makeClient(logger: logger) }
      try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { await client.run() } }
        defer { group.cancelAll() }
        try await body(clients.map { PostgresIntakeStore(client: $0, clock: clock, logger: logger) })
      }
    }
  }

  @Test("the same idempotency key sent to two replicas at once creates one incident, and both callers get it")
  func sameKeyOnTwoReplicas() async throws {
    try await self.withReplicas(2) { stores in
      for round in 0..<25 {
        let submission = try self.submission("same-\(round)", customer: "c\(round)")
        // Four callers per round: two on each replica, so group commit batches meet across replicas too.
        let outcomes = try await withThrowingTaskGroup(of: SubmissionOutcome.self) { group in
          for caller in 0..<4 {
            group.addTask { try await stores[caller % 2].submit([submission])[0] }
          }
          return try await group.reduce(into: []) { $0.append($1) }
        }
        var ids = Set<String>()
        var accepted = 0
        for outcome in outcomes {
          switch outcome {
          case .accepted(let incident): accepted += 1; ids.insert(incident.id)
          case .replayed(let incident): ids.insert(incident.id)
          case .conflict: Issue.record("a retry of the same report conflicted")
          }
        }
        #expect(accepted == 1, "round \(round): \(outcomes)")
        #expect(ids.count == 1, "round \(round): \(ids)")
      }
      #expect(try await stores[0].incidentCount() == 25)
      #expect(try await stores[1].pendingDeliveryCount() == 25)
    }
  }

  @Test("a different report under a key another replica stored is a conflict naming the first incident")
  func conflictAcrossReplicas() async throws {
    try await self.withReplicas(2) { stores in
      guard case .accepted(let first) = try await stores[0].submit([self.submission("k")])[0] else {
        Issue.record("not accepted")
        return
      }
      let other = try await stores[1].submit([self.submission("k", title: "Another title")])[0]
      #expect(other == .conflict(originalIncidentID: first.id))
      #expect(try await stores[1].submit([self.submission("k")])[0] == .replayed(first))
    }
  }

  @Test("reports of one group arriving on two replicas at once attach to one root that counts them all")
  func groupAcrossReplicas() async throws {
    try await self.withReplicas(2) { stores in
      let outcomes = try await withThrowingTaskGroup(of: SubmissionOutcome.self) { group in
        for index in 0..<20 {
          // Customers repeat (10 distinct): the root counts reports and distinct clients.
          let submission = try self.submission("g-\(index)", customer: "cust-\(index % 10)", group: "outage-42")
          group.addTask { try await stores[index % 2].submit([submission])[0] }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      var roots = Set<String>()
      var rootID = ""
      for case .accepted(let incident) in outcomes {
        if incident.groupRootID.isEmpty {
          rootID = incident.id
        } else {
          roots.insert(incident.groupRootID)
        }
      }
      #expect(!rootID.isEmpty)
      #expect(roots == [rootID])
      let root = try await stores[1].incident(id: rootID, tenant: "acme")
      #expect(root?.reportsInGroup == 20)
      #expect(root?.clientsAffected == 10)
    }
  }

  @Test("replicas claim disjoint outbox rows; a dead replica's claim lapses at its lease's end and another takes over")
  func outboxClaims() async throws {
    try await self.withReplicas(2) { stores in
      _ = try await stores[0].submit(try (0..<40).map { try self.submission("o-\($0)", customer: "c\($0)") })
      do {
        let now = Date().addingTimeInterval(1)
        let lease = now.addingTimeInterval(30)
        // Both replicas deliver at once, as their outboxes do: claim a few, record each delivery, claim again.
        let delivered = try await withThrowingTaskGroup(of: [String].self) { group in
          for replica in 0..<2 {
            group.addTask {
              var mine: [String] = []
              while true {
                let batch = try await stores[replica].claimDeliveries(dueBy: now, now: now, limit: 3, leaseUntil: lease)
                if batch.isEmpty { return mine }
                for delivery in batch {
                  mine.append(delivery.incident.id)
                  try await stores[replica].recordDelivery(incidentID: delivery.incident.id, remedyID: "rem-\(delivery.incident.id)")
                }
              }
            }
          }
          return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(delivered[0].count + delivered[1].count == 40)
        #expect(Set(delivered[0]).isDisjoint(with: delivered[1]))
        #expect(try await stores[0].pendingDeliveryCount() == 0)
      }

      // Replica 0 claims five and "dies": replica 1 skips them until the lease ends, then takes them over.
      _ = try await stores[0].submit(try (0..<5).map { try self.submission("l-\($0)", customer: "c\($0)") })
      // Times after these incidents were received, however long that took on a loaded machine.
      let now = Date().addingTimeInterval(1)
      let lease = now.addingTimeInterval(30)
      let held = try await stores[0].claimDeliveries(dueBy: now, now: now, limit: 100, leaseUntil: lease)
      #expect(held.count == 5)
      #expect(try await stores[1].claimDeliveries(dueBy: now, now: now, limit: 100, leaseUntil: lease).isEmpty)
      // For the holder its own claims are due now; for the other replica, not before the lease ends.
      #expect(try await stores[0].nextDeliveryDue().map { $0 <= now } == true)
      #expect(try await stores[1].nextDeliveryDue().map { $0 >= lease.addingTimeInterval(-0.01) } == true)
      let later = lease.addingTimeInterval(1)
      let takenOver = try await stores[1].claimDeliveries(dueBy: later, now: later, limit: 100, leaseUntil: later.addingTimeInterval(30))
      #expect(Set(takenOver.map(\.incident.id)) == Set(held.map(\.incident.id)))

      // A delivered incident records its remedy; a failed one waits its backoff, unclaimed, with its attempt counted.
      let first = takenOver[0].incident.id
      try await stores[1].recordDelivery(incidentID: first, remedyID: "rem_1")
      #expect(try await stores[0].incident(id: first, tenant: "acme")?.status == .inRemediation)
      let second = takenOver[1].incident.id
      let retryAt = later.addingTimeInterval(60)
      try await stores[1].recordFailedDelivery(incidentID: second, attempts: 1, nextAttempt: retryAt, error: "unavailable")
      let retried = try await stores[0].claimDeliveries(dueBy: retryAt, now: later, limit: 100, leaseUntil: retryAt)
      #expect(retried.map(\.incident.id) == [second])
      #expect(retried.first?.attempts == 1)
      #expect(try await stores[0].pendingDeliveryCount() == 4)
    }
  }

  @Test("an incident stored through one replica rings every replica's outbox (LISTEN/NOTIFY)")
  func doorbellAcrossReplicas() async throws {
    try await self.withReplicas(2) { stores in
      let listening = AsyncStream<Void>.makeStream()
      let listener = PostgresListener(
        client: stores[1].client, channel: PostgresIntakeStore.channel, logger: Logger(label: "listener"),
        listening: { listening.continuation.yield() },
        handle: { _ in stores[1].newIncidents.ring() }
      )
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await listener.run() }
        defer { group.cancelAll() }
        try await withTimeout(30, "the listener to listen") {
          for await _ in listening.stream { return }
        }
        _ = try await stores[0].submit([self.submission("bell")])
        try await withTimeout(30, "replica 1's doorbell") { await stores[1].newIncidents.wait() }
      }
    }
  }

  @Test("--import-sqlite copies incidents, keys, groups and the outbox; retries replay on PostgreSQL; a non-empty target is refused")
  func importFromSQLite() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.url.appendingPathComponent("intake.sqlite").path
    let sqlite = try IntakeStore(path: path)
    var submissions = try (0..<30).map { try self.submission("imp-\($0)", customer: "c\($0 % 7)", group: $0 % 3 == 0 ? "g1" : "") }
    submissions.append(try self.submission("solo"))
    let stored = try await sqlite.submit(submissions)
    guard case .accepted(let delivered) = stored[1] else { throw TimedOut(what: "an accepted incident") }
    try await sqlite.recordDelivery(incidentID: delivered.id, remedyID: "rem_x")
    try sqlite.close()

    try await TestPostgres.withDatabase { url in
      let settings = try PostgresSettings(url: url, password: nil)
      let logger = Logger(label: "import-test")
      #expect(try await IntakeApplication.importSQLite(at: path, into: settings, logger: logger) == 31)
      let client = try settings.makeClient(logger: logger)
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        let postgres = PostgresIntakeStore(client: client, logger: logger)
        #expect(try await postgres.incidentCount() == 31)
        #expect(try await postgres.pendingDeliveryCount() == 30)
        let original = try IntakeStore(path: path)
        for (index, outcome) in stored.enumerated() {
          guard case .accepted(let incident) = outcome else { continue }
          let copied = try await postgres.incident(id: incident.id, tenant: "acme")
          #expect(copied == (try await original.incident(id: incident.id, tenant: "acme")))
          // A retry after the move replays the incident stored before it.
          guard case .replayed(let replayed) = try await postgres.submit([submissions[index]])[0] else {
            Issue.record("\(incident.id) was not replayed after the import")
            continue
          }
          #expect(replayed.id == incident.id)
        }
        // The group goes on: a new report joins the imported root.
        guard case .accepted(let member) = try await postgres.submit([self.submission("imp-new", customer: "c-new", group: "g1")])[0] else {
          throw TimedOut(what: "an accepted member")
        }
        guard case .accepted(let root) = stored[0] else { throw TimedOut(what: "the root") }
        #expect(member.groupRootID == root.id)
        #expect(try await postgres.incident(id: root.id, tenant: "acme")?.reportsInGroup == 11)
      }
      await #expect(throws: ServiceSettings.SettingsError.self) {
        try await IntakeApplication.importSQLite(at: path, into: settings, logger: logger)
      }
    }
  }
}

@Suite("Intake without its database")
struct IntakeDatabaseDownTests {
  @Test("with PostgreSQL gone a submit answers UNAVAILABLE and stores nothing, health turns NOT_SERVING; when it comes back intake recovers by itself")
  func recovers() async throws {
    try await TestPostgres.withDatabase { url in
      let server = try TestPostgres.serverURL()
      try await TCPProxy.with(to: server.host ?? "", port: server.port ?? 0) { proxy in
        var viaProxy = URLComponents(string: url)
        viaProxy?.port = proxy.port
        let failFast: (inout IntakeConfig) throws -> Void = { $0.storage.postgres?.connectTimeout = .seconds(2) }
        try await IntakeHarness.run(clock: SystemWallClock(), postgresURL: viaProxy?.string, configure: failFast) { harness in
          try await harness.withClient { intake in
            let token = bearer(TestIdentities.toolA.token)
            _ = try await intake.submitIncident(submitRequest("before", validReport(title: "before")), metadata: token)
            try await eventually(20, "health to be SERVING") { harness.app.server.health.status() == .serving }

            proxy.cut()
            do {
              _ = try await intake.submitIncident(submitRequest("during", validReport(title: "during")), metadata: token)
              Issue.record("a submit succeeded without a database")
            } catch let error as RPCError {
              #expect(error.code == .unavailable)
              // Refused at once ("nothing was stored"), or at the deadline (the retry with the key is safe either way).
              #expect(error.message.contains("nothing was stored") || error.message.contains("same idempotency key"))
            }
            try await eventually(20, "health to turn NOT_SERVING") { harness.app.server.health.status() == .notServing }

            proxy.restore()
            // The retry of the refused submit creates its incident now (nothing of it was stored before).
            try await eventually(20, "submits to succeed again") {
              let response = try await intake.submitIncident(submitRequest("during", validReport(title: "during")), metadata: token)
              return !response.replayed
            }
            try await eventually(20, "health to be SERVING again") { harness.app.server.health.status() == .serving }
            #expect(try await harness.app.store.incidentCount() == 2)
          }
        }
      }
    }
  }
}
