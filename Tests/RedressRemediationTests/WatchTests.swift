import Foundation
import GRPCCore
import RedressSchemas
@testable import RedressRemediation
import Testing
import RedressTestSupport

/// WatchRemedy: a snapshot, then every change in order, resumable, redacted for client tools.
@Suite("Watching a remedy")
struct WatchTests {
  /// Runs `body` while `watcher` watches; cancels the watch afterwards.
  func watching<T: Sendable>(
    _ watcher: Watcher,
    _ desk: Desk,
    _ remedyID: String,
    after version: Int64 = 0,
    _ body: () async throws -> T
  ) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { await watcher.run(desk, remedyID: remedyID, afterVersion: version) }
      defer { group.cancelAll() }
      return try await body()
    }
  }

  @Test("a watch sends a snapshot, then every change in order, timer escalations included", arguments: Backend.allCases)
  func snapshotThenChanges(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      let watcher = Watcher()
      try await self.watching(watcher, walk.olivia, walk.remedy.id) {
        let first = try await watcher.next(1)
        #expect(first.first?.snapshot == walk.remedy)
        try await walk.act(Do.investigate())
        try await walk.act(Do.apologize())
        harness.clock.advance(by: 4 * 86_400)  // past the P2 resolve deadline
        try await harness.app.timer.checkDeadlines()
        walk.remedy = try await walk.olivia.get(walk.remedy.id)
        try await walk.act(Do.offer(), as: People.omar)
        let changes = try await watcher.next(4).map(\.change)
        #expect(changes.map(\.entry.version) == [2, 3, 4, 5])
        #expect(changes.map(\.entry.action) == ["investigate", "apologize", "escalate", "offer"])
        #expect(changes.map(\.remedy.version) == [2, 3, 4, 5])
        #expect(changes.last?.remedy == (try await walk.olivia.get(walk.remedy.id)))
      }
    }
  }

  @Test("a watcher of a group member sees the group's shared investigation live", arguments: Backend.allCases)
  func sharedInvestigationIsPublished(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let root = try await harness.open(Incidents.make(id: "inc_root"))
      let member = try await harness.open(Incidents.make(id: "inc_member", customer: "cust-8", groupRoot: "inc_root"))
      let watcher = Watcher()
      try await self.watching(watcher, harness.desk(People.olivia), member.id) {
        _ = try await watcher.next(1)
        try await harness.desk(People.olivia).act(root, Do.investigate(forGroup: true))
        let change = try #require(try await watcher.next(1).first).change
        #expect(change.entry.version == 2)
        #expect(change.entry.action == "investigate")
        #expect(change.remedy.investigation.sharedFromRemedyID == root.id)
      }
    }
  }

  @Test("a watch resumed after a version replays what came after it, then continues live", arguments: Backend.allCases)
  func resume(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()  // versions 2 and 3
      let watcher = Watcher()
      try await self.watching(watcher, walk.olivia, walk.remedy.id, after: 1) {
        let replayed = try await watcher.next(2)
        #expect(replayed.allSatisfy { $0.snapshot == Redress_V1_Remedy() })
        #expect(replayed.map(\.change.entry.action) == ["investigate", "apologize"])
        try await walk.act(Do.offer())
        let live = try await watcher.next(1)
        #expect(live.map(\.change.entry.version) == [4])
      }
      await expectError(.invalidArgument, containing: "beyond the remedy's version") {
        let watcher = Watcher()
        await watcher.run(walk.olivia, remedyID: walk.remedy.id, afterVersion: 99)
        return try await watcher.next(1)
      }
    }
  }

  @Test("a client tool's watch leaves out internal changes and the investigation", arguments: Backend.allCases)
  func clientToolWatch(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      let watcher = Watcher()
      try await self.watching(watcher, harness.desk(People.portal), walk.remedy.id) {
        _ = try await watcher.next(1)
        try await walk.act(Do.investigate())
        try await walk.act(Do.note("internal: tough client", internal: true))
        try await walk.act(Do.apologize())
        let change = try #require(try await watcher.next(1).first?.change)
        #expect(change.entry.action == "apologize")
        #expect(change.entry.version == 4)
        #expect(!change.remedy.hasInvestigation)
        #expect(change.remedy.timeline.map(\.action) == ["open", "apologize"])
      }
    }
  }

  @Test("a watch whose grpc-timeout passes ends with deadlineExceeded, not unavailable (issue 11, finding 10)", arguments: Backend.allCases)
  func watchDeadline(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let walk = try await Walk.open(harness)
      var metadata = walk.olivia.metadata
      // Metadata only, as a peer in another language sends it: the client enforces no deadline of its own.
      metadata.addString("300m", forKey: "grpc-timeout")
      let error = await expectError(.deadlineExceeded) {
        try await harness.client.watchRemedy(.with { $0.remedyID = walk.remedy.id }, metadata: metadata) { response in
          for try await _ in response.messages {}
        }
      }
      #expect(error?.message.contains("deadline") == true)
    }
  }

  @Test("watching an unknown or another tenant's remedy answers NOT_FOUND", arguments: Backend.allCases)
  func watchNotFound(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let remedy = try await harness.open()
      for (desk, id) in [(harness.desk(People.greta), remedy.id), (harness.desk(People.olivia), "rem_missing")] {
        await expectError(.notFound) {
          let watcher = Watcher()
          await watcher.run(desk, remedyID: id)
          return try await watcher.next(1)
        }
      }
    }
  }
}

@Suite("Graceful shutdown")
struct ShutdownTests {
  @Test("graceful shutdown ends open watches with UNAVAILABLE naming the version to resume from, and the server stops", arguments: Backend.allCases)
  func shutdownEndsWatches(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate())
      let watcher = Watcher()
      let (olivia, id) = (walk.olivia, walk.remedy.id)
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run(olivia, remedyID: id) }
        #expect(try await watcher.next(1).first?.snapshot.version == 2)
        await harness.shutdown()
        await expectError(.unavailable, containing: "after_version 2") {
          try await watcher.next(1)
        }
        try await group.waitForAll()
      }
    }
  }
}

@Suite("Watch lifetime")
struct WatchLifetimeTests {
  @Test("a watch whose client goes away ends on the server and releases its subscription", arguments: Backend.allCases)
  func clientGoesAway(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let remedy = try await harness.open()
      let watcher = Watcher()
      let olivia = harness.desk(People.olivia)
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run(olivia, remedyID: remedy.id) }
        _ = try await watcher.next(1)
        #expect(harness.app.broadcaster.subscriberCount == 1)
        group.cancelAll()
      }
      try await withTimeout(15, "the server to end the abandoned watch") {
        await harness.app.broadcaster.waitUntilIdle()
      }
      #expect(harness.app.broadcaster.subscriberCount == 0)
    }
  }
}
