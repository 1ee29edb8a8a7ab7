import Foundation
import GRPCCore
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

/// Service-level timers driven by a manual clock: overdue marks, escalations, persistence across restarts.
@Suite("Deadlines")
struct DeadlineTests {
  @Test("an unacknowledged remedy turns overdue at its acknowledge deadline and escalates exactly once", arguments: Backend.allCases)
  func acknowledgeDeadline(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let opened = harness.clock.now()
      var walk = try await Walk.open(harness, Incidents.make(priority: .p2))
      #expect(walk.remedy.acknowledgeBy.date == opened + 4 * 3_600)
      #expect(walk.remedy.resolveBy.date == opened + 3 * 86_400)
      #expect(walk.remedy.stage(.acknowledge).dueAt.date == opened + 4 * 3_600)

      harness.clock.advance(by: 4 * 3_600 - 60)
      try await harness.app.timer.checkDeadlines()
      #expect(try await walk.olivia.get(walk.remedy.id).version == 1)

      harness.clock.advance(by: 60)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.version == 2)
      #expect(walk.remedy.overdue)
      #expect(walk.remedy.stage(.acknowledge).overdue)
      #expect(walk.remedy.stage(.investigate).overdue)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:acknowledge"])
      #expect(walk.remedy.timeline.last?.action == "escalate")
      #expect(walk.remedy.timeline.last?.internal == true)
      let overdue = try await walk.olivia.list(.with { $0.overdueOnly = true })
      #expect(overdue.remedies.map(\.id) == [walk.remedy.id])

      harness.clock.advance(by: 3_600)
      #expect(try await harness.app.timer.checkDeadlines().isEmpty)
      #expect(try await walk.olivia.get(walk.remedy.id).version == 2)

      try await walk.toPropose()
      #expect(!walk.remedy.overdue)
      #expect(try await walk.olivia.list(.with { $0.overdueOnly = true }).remedies.isEmpty)
    }
  }

  @Test("a complaint raised on a public channel gets shorter, configurable targets", arguments: Backend.allCases)
  func publicChannelsAreShorter(backend: Backend) async throws {
    try await RemediationHarness.run(backend, configure: { config in
      config.policy.serviceLevels.p1 = .init(acknowledge: .seconds(600), resolve: .seconds(7_200))
      config.policy.serviceLevels.publicChannelDivisor = 4
    }) { harness in
      let opened = harness.clock.now()
      let email = try await harness.open(Incidents.make(priority: .p1, channel: .email))
      let social = try await harness.open(Incidents.make(priority: .p1, channel: .publicSocial))
      #expect(email.acknowledgeBy.date == opened + 600)
      #expect(email.resolveBy.date == opened + 7_200)
      #expect(social.acknowledgeBy.date == opened + 150)
      #expect(social.resolveBy.date == opened + 1_800)
      harness.clock.advance(by: 150)
      #expect(try await harness.app.timer.checkDeadlines() == [social.id])
    }
  }

  @Test("a fix past its due date is marked overdue and escalated", arguments: Backend.allCases)
  func fixDeadline(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toFix()
      try await walk.act(Do.assignFix(due: harness.clock.now() + 3_600))
      harness.clock.advance(by: 3_601)
      try await harness.app.timer.checkDeadlines()
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.stage(.fix).overdue)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:fix"])
      #expect(walk.remedy.overdue)
    }
  }

  @Test("deadlines are stored: a restart neither loses one that passed while down nor fires one twice", arguments: Backend.allCases)
  func deadlinesSurviveRestart(backend: Backend) async throws {
    try await backend.withDatabase { database in try await self.deadlinesSurviveRestart(database) }
  }

  func deadlinesSurviveRestart(_ database: TestDatabase) async throws {
    let clock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000))
    let remedy = try await RemediationHarness.run(database: database, clock: clock) { harness in
      try await harness.open(Incidents.make(priority: .p2))
    }
    // Down while the acknowledge deadline passes.
    clock.advance(by: 5 * 3_600)
    try await RemediationHarness.run(database: database, clock: clock) { harness in
      try await harness.app.timer.checkDeadlines()
      let stored = try await harness.desk(People.rita).get(remedy.id)
      #expect(stored.escalations.map(\.kind) == ["overdue:acknowledge"])
      #expect(stored.version == 2)
    }
    try await RemediationHarness.run(database: database, clock: clock) { harness in
      try await harness.app.timer.checkDeadlines()
      #expect(try await harness.desk(People.rita).get(remedy.id).version == 2)
      clock.advance(by: 3 * 86_400)
      try await harness.app.timer.checkDeadlines()
      let stored = try await harness.desk(People.rita).get(remedy.id)
      #expect(stored.escalations.map(\.kind) == ["overdue:acknowledge", "overdue:resolve"])
      #expect(stored.version == 3)
    }
  }
}
