import Foundation
import GRPCCore
import Logging
import RedressRemediation
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

/// Two remediation replicas on one PostgreSQL database (issue 14): every guarantee holds across them.
@Suite("Remediation replicas on PostgreSQL")
struct ReplicaTests {
  /// Runs `body` with two replicas (each its own server and pool) on one new database and one clock.
  func twoReplicas(_ body: (RemediationHarness, RemediationHarness) async throws -> Void) async throws {
    try await TestPostgres.withDatabase { url in
      let clock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000))
      try await RemediationHarness.run(database: .postgres(url: url), clock: clock) { a in
        try await RemediationHarness.run(database: .postgres(url: url), clock: clock) { b in
          try await body(a, b)
        }
      }
    }
  }

  @Test("replicas starting at once apply the migrations once")
  func concurrentMigrations() async throws {
    try await TestPostgres.withDatabase { url in
      let settings = try PostgresSettings(url: url, password: nil)
      let logger = Logger(label: "replica-test")
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<4 {
          group.addTask { try await RemediationApplication.migrate(settings, logger: logger) }
        }
        try await group.waitForAll()
      }
    }
  }

  @Test("the same incident opened through both replicas at once is one remedy")
  func openIsIdempotentAcrossReplicas() async throws {
    try await self.twoReplicas { a, b in
      let incident = Incidents.make()
      let answers = try await withThrowingTaskGroup(of: Redress_V1_OpenRemedyResponse.self) { group in
        for index in 0..<16 {
          let replica = index.isMultiple(of: 2) ? a : b
          group.addTask { try await replica.intake.open(incident) }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      #expect(Set(answers.map(\.remedy.id)).count == 1)
      #expect(answers.filter { !$0.alreadyOpen }.count == 1)
    }
  }

  @Test("a change through one replica reaches a watcher on the other, in order, once")
  func watchAcrossReplicas() async throws {
    try await self.twoReplicas { a, b in
      var walk = try await Walk.open(a)
      let watcher = Watcher()
      let remedyID = walk.remedy.id
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run(b.desk(People.rita), remedyID: remedyID) }
        defer { group.cancelAll() }
        _ = try await watcher.next(1)
        try await walk.act(Do.receipt())
        try await walk.act(Do.investigate())
        try await walk.act(Do.apologize())
        let changes = try await watcher.next(3).map(\.change)
        #expect(changes.map(\.entry.version) == [2, 3, 4])
        #expect(changes.map(\.entry.action) == ["receipt", "investigate", "apologize"])
        #expect(changes.last?.remedy == walk.remedy)
      }
    }
  }

  @Test("two replicas acting on one version: one wins, the other is told the remedy changed")
  func staleAcrossReplicas() async throws {
    try await self.twoReplicas { a, b in
      let remedy = try await a.open(Incidents.make())
      let results = await withTaskGroup(of: Result<Redress_V1_Remedy, any Error>.self) { group in
        for (index, replica) in [a, b, a, b].enumerated() {
          group.addTask {
            await Result(asyncCatching: { try await replica.desk(People.olivia).act(remedy, Do.note("from replica \(index)", internal: true)) })
          }
        }
        return await group.reduce(into: []) { $0.append($1) }
      }
      let won = results.compactMap { try? $0.get() }
      #expect(won.count == 1)
      #expect(won.first?.version == 2)
      for case .failure(let error) in results {
        #expect((error as? RPCError)?.code == .aborted, "\(error)")
      }
      #expect(try await b.desk(People.rita).get(remedy.id).timeline.count == 2)
    }
  }

  @Test("a deadline both replicas' timers see fires once")
  func deadlineFiresOnce() async throws {
    try await self.twoReplicas { a, b in
      let remedy = try await a.open(Incidents.make(priority: .p2))
      a.clock.advance(by: 4 * 3_600)
      let fired = try await withThrowingTaskGroup(of: [String].self) { group in
        for replica in [a, b, a, b] {
          group.addTask { try await replica.app.timer.checkDeadlines() }
        }
        return try await group.reduce(into: []) { $0 += $1 }
      }
      #expect(fired == [remedy.id])
      let stored = try await b.desk(People.rita).get(remedy.id)
      #expect(stored.escalations.map(\.kind) == ["overdue:acknowledge"])
      #expect(stored.version == 2)
    }
  }
}

@Suite("Remediation without its database")
struct DatabaseDownTests {
  @Test("with PostgreSQL unreachable, calls answer UNAVAILABLE and health turns NOT_SERVING")
  func unreachable() async throws {
    // Port 1: nothing listens there (a privileged port no test binds), so every connection is refused.
    try await RemediationHarness.run(database: .postgresAsIs(url: "postgres://redress@127.0.0.1:1/none?sslmode=disable")) { harness in
      let error = await expectError(.unavailable, containing: "database") {
        try await harness.intake.open(Incidents.make())
      }
      #expect(error != nil)
      try await eventually(20, "health to turn NOT_SERVING") { harness.app.server.health.status() == .notServing }
    }
  }

  @Test("when PostgreSQL comes back, remediation recovers by itself: calls succeed and health is SERVING again")
  func recovers() async throws {
    try await TestPostgres.withDatabase { url in
      try await RemediationApplication.migrate(try PostgresSettings(url: url, password: nil), logger: Logger(label: "test"))
      let server = try TestPostgres.serverURL()
      try await TCPProxy.with(to: server.host ?? "", port: server.port ?? 0) { proxy in
        var viaProxy = URLComponents(string: url)
        viaProxy?.port = proxy.port
        try await RemediationHarness.run(database: .postgresAsIs(url: viaProxy?.string ?? "")) { harness in
          let remedy = try await harness.open(Incidents.make(id: "inc_before"))
          try await eventually(20, "health to be SERVING") { harness.app.server.health.status() == .serving }

          proxy.cut()
          _ = await expectError(.unavailable, containing: "database") { try await harness.desk(People.rita).get(remedy.id) }
          try await eventually(20, "health to turn NOT_SERVING") { harness.app.server.health.status() == .notServing }

          proxy.restore()
          try await eventually(20, "calls to succeed again") { try await harness.desk(People.rita).get(remedy.id) == remedy }
          try await eventually(20, "health to be SERVING again") { harness.app.server.health.status() == .serving }
          let after = try await harness.open(Incidents.make(id: "inc_after"))
          #expect(after.version == 1)
        }
      }
    }
  }
}

extension Result where Failure == any Error {
  init(asyncCatching body: () async throws -> Success) async {
    do { self = .success(try await body()) } catch { self = .failure(error) }
  }
}

@Suite("Moving from SQLite to PostgreSQL")
struct ImportTests {
  @Test("--import-sqlite copies remedies, change logs and groups; the service goes on from there")
  func importSQLite() async throws {
    try await TestPostgres.withDatabase { url in
      let directory = try TemporaryDirectory()
      let clock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000))
      let (before, root) = try await RemediationHarness.run(database: .sqlite(directory), clock: clock) { harness in
        var walk = try await Walk.open(harness, Incidents.make(id: "inc_root"))
        try await walk.act(Do.investigate(forGroup: true))
        try await walk.act(Do.apologize())
        try await walk.act(Do.offer(compensation: [20_000]), as: People.alice)
        try await walk.act(Do.respond(1, .accepted))
        try await walk.act(Do.compensate(20_000, key: "big"))
        let other = try await harness.open(Incidents.make(id: "inc_other"))
        return ([walk.remedy, other], walk.remedy)
      }
      let settings = try PostgresSettings(url: url, password: nil)
      let logger = Logger(label: "import-test")
      let path = directory.url.appendingPathComponent("remediation.sqlite").path
      #expect(try await RemediationApplication.importSQLite(at: path, into: settings, logger: logger) == 2)
      await #expect(throws: ServiceSettings.SettingsError.self) {
        try await RemediationApplication.importSQLite(at: path, into: settings, logger: logger)
      }
      try await RemediationHarness.run(database: .postgres(url: url), clock: clock) { harness in
        for remedy in before {
          #expect(try await harness.desk(People.rita).get(remedy.id) == remedy)
        }
        // The change log came along: a watch from version 1 replays every change.
        let watcher = Watcher()
        let replayed = try await withThrowingTaskGroup(of: Void.self) { group in
          group.addTask { await watcher.run(harness.desk(People.rita), remedyID: root.id, afterVersion: 1) }
          defer { group.cancelAll() }
          return try await watcher.next(Int(root.version) - 1)
        }
        #expect(replayed.map(\.change.entry.version) == Array(2...root.version))
        // Work goes on: the item awaiting approval is approved, and the group's findings reach a new member.
        let approved = try await harness.desk(People.aaron).act(root, Do.approve("cmp-1"))
        #expect(approved.currentStage == .fix)
        let member = try await harness.open(Incidents.make(id: "inc_member", groupRoot: "inc_root"))
        #expect(member.investigation.sharedFromRemedyID == root.id)
      }
    }
  }
}
