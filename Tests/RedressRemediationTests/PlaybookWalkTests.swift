import Foundation
import GRPCCore
import RedressSchemas
import RedressTestSupport
import Testing

/// Whole remedies walked through the public API over TLS, one per path of the playbook.
@Suite("Playbook walks")
struct PlaybookWalkTests {
  @Test("a legitimate claim accepted in round one goes through every stage to resolved", arguments: Backend.allCases)
  func legitimateAcceptedInRoundOne(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      #expect(walk.remedy.version == 1)
      #expect(walk.remedy.status == .open)
      #expect(walk.remedy.currentStage == .investigate)
      #expect(walk.remedy.nextAction.hasPrefix("Acknowledge receipt now"))
      try await walk.act(Do.receipt(.email))
      #expect(walk.remedy.nextAction.hasPrefix("Investigate"))

      try await walk.act(Do.investigate())
      #expect(walk.remedy.stage(.investigate).state == .done)
      #expect(walk.remedy.currentStage == .acknowledge)
      try await walk.act(Do.apologize(.phone))
      #expect(walk.remedy.acknowledgement.by == "olivia")
      #expect(walk.remedy.acknowledgement.channel == .phone)
      #expect(walk.remedy.currentStage == .propose)

      try await walk.act(Do.offer(compensation: [3_000]))
      #expect(walk.remedy.offers.map(\.round) == [1])
      #expect(walk.remedy.nextAction.contains("round 1"))
      try await walk.act(Do.respond(1, .accepted), as: People.portal)
      #expect(walk.remedy.currentStage == .compensate)

      try await walk.act(Do.compensate(3_000, key: "credit-1"))
      #expect(walk.remedy.compensation.items.map(\.state) == [.issued])
      #expect(walk.remedy.compensation.issued.amountMinor == 3_000)
      #expect(walk.remedy.stage(.compensate).state == .done)
      #expect(walk.remedy.currentStage == .fix)

      try await walk.fixEverything()
      #expect(walk.remedy.fix.owner == "Sam Rivera")
      #expect(walk.remedy.fix.verifiedBy == "olivia")
      #expect(walk.remedy.fix.hasClientConfirmedAt)
      #expect(walk.remedy.currentStage == .goodwill)
      let scheduled = walk.remedy.followUp.scheduledAt.date
      #expect(scheduled == harness.clock.now() + 3 * 86_400)

      try await walk.act(Do.goodwill(2_000))
      #expect(walk.remedy.goodwill.issued.amountMinor == 2_000)
      #expect(walk.remedy.currentStage == .followUp)

      harness.clock.advance(by: 3 * 86_400)
      try await walk.act(Do.followUp(.satisfied))
      #expect(walk.remedy.currentStage == .learn)
      try await walk.act(Do.learn())
      #expect(walk.remedy.status == .resolved)
      #expect(walk.remedy.stages.allSatisfy { $0.state == .done })
      #expect(walk.remedy.nextAction == "Nothing: the remedy is resolved.")
      #expect(walk.remedy.timeline.map(\.action) == [
        "open", "receipt", "investigate", "apologize", "offer", "respond", "compensate", "fix", "fix", "fix", "fix", "goodwill",
        "follow-up", "learn",
      ])
      #expect(walk.remedy.timeline.map(\.version) == Array(1...14))
      let stored = try await harness.desk(People.rita).get(walk.remedy.id)
      #expect(stored == walk.remedy)
    }
  }

  @Test("a rejected offer opens round two, which the client accepts", arguments: Backend.allCases)
  func rejectedThenAccepted(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer(compensation: [1_000]))
      try await walk.act(Do.respond(1, .rejected, reason: "Too little for the trouble."))
      #expect(walk.remedy.offers[0].answer == .rejected)
      #expect(walk.remedy.offers[0].answerReason == "Too little for the trouble.")
      #expect(walk.remedy.currentStage == .propose)
      #expect(walk.remedy.nextAction.contains("round 2"))
      try await walk.act(Do.offer(compensation: [2_500]))
      try await walk.act(Do.respond(0, .accepted))  // 0: the offer awaiting an answer
      #expect(walk.remedy.offers.map(\.round) == [1, 2])
      #expect(walk.remedy.offers.map(\.answer) == [.rejected, .accepted])
      #expect(walk.remedy.currentStage == .compensate)
      #expect(walk.remedy.nextAction.contains("0.00 USD of 25.00 USD"))
      try await walk.act(Do.compensate(2_500, key: "k"))
      #expect(walk.remedy.currentStage == .fix)
    }
  }

  @Test("a third party's doing is acknowledged, then referred and tracked until closed", arguments: Backend.allCases)
  func thirdParty(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.thirdParty, thirdParty: "FastFreight Ltd"))
      #expect(walk.remedy.currentStage == .acknowledge)
      await expectError(.failedPrecondition, containing: "still acknowledged") {
        try await walk.olivia.act(walk.remedy, Do.refer())
      }
      try await walk.act(Do.apologize(.email))
      #expect(walk.remedy.nextAction.contains("Refer the claim to FastFreight Ltd"))
      try await walk.act(Do.refer())
      #expect(walk.remedy.status == .referred)
      #expect(walk.remedy.referralStatus.contains("FastFreight Ltd"))
      #expect(walk.remedy.stage(.propose).state == .skipped)
      #expect(walk.remedy.stage(.learn).skipReason == "Referred to FastFreight Ltd.")
      try await walk.act(Do.refer(notes: "FastFreight opened claim FF-99."))
      #expect(walk.remedy.referralStatus == "FastFreight opened claim FF-99.")
      try await walk.act(Do.refer(notes: "FastFreight refunded the client.", closed: true))
      #expect(walk.remedy.hasClosedAt)
      #expect(walk.remedy.nextAction == "Nothing: the referral is closed.")
      await expectError(.failedPrecondition, containing: "closed") {
        try await walk.olivia.act(walk.remedy, Do.refer(notes: "again"))
      }
    }
  }

  @Test("an outside-policy claim is declined politely without an apology once the receipt is acknowledged", arguments: Backend.allCases)
  func outsidePolicyWithoutApology(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.outsidePolicy))
      #expect(walk.remedy.nextAction.contains("no apology is owed"))
      await expectError(.failedPrecondition, containing: "receipt") {
        try await walk.olivia.act(walk.remedy, Do.decline())
      }
      try await walk.act(Do.receipt(.email))
      try await walk.act(Do.decline("Outside the 30-day window."))
      #expect(walk.remedy.status == .declined)
      #expect(!walk.remedy.hasAcknowledgement)
      #expect(walk.remedy.stage(.acknowledge).state == .skipped)
      #expect(walk.remedy.stage(.acknowledge).skipReason.contains("No apology"))
      // Nobody apologized, so nothing says so: not the timeline, not the client's view of it.
      #expect(!walk.remedy.timeline.contains { $0.action == "apologize" || $0.summary.lowercased().contains("apologized") })
      #expect(!walk.remedy.clientView.timeline.contains { $0.summary.lowercased().contains("apologized") })
      #expect(walk.remedy.clientView.timeline.contains { $0.summary == "We acknowledged your report and will take care of it." })
    }
  }

  @Test("an outside-policy claim is acknowledged, then declined politely", arguments: Backend.allCases)
  func outsidePolicy(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.outsidePolicy))
      await expectError(.failedPrecondition, containing: "receipt") {
        try await walk.olivia.act(walk.remedy, Do.decline())
      }
      try await walk.act(Do.apologize(.chat))
      await expectError(.failedPrecondition, containing: "decline it politely") {
        try await walk.olivia.act(walk.remedy, Do.offer())
      }
      try await walk.act(Do.decline("Outside the 30-day window."))
      #expect(walk.remedy.status == .declined)
      #expect(walk.remedy.stage(.acknowledge).state == .done)
      #expect(walk.remedy.stage(.propose).state == .skipped)
      #expect(walk.remedy.timeline.last?.summary.contains("returns-4.2") == true)
      await expectError(.failedPrecondition, containing: "declined") {
        try await walk.olivia.act(walk.remedy, Do.escalate("why"))
      }
    }
  }

  @Test("a bad-faith demand goes to legal with a legal owner and its own status", arguments: Backend.allCases)
  func badFaithToLegal(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.badFaith, legalOwner: "Lena Law"))
      #expect(walk.remedy.status == .withLegal)
      #expect(walk.remedy.owner == "Lena Law")
      #expect(walk.remedy.legalStatus.contains("Lena Law"))
      #expect(walk.remedy.escalations.map(\.kind) == ["legal"])
      #expect(walk.remedy.stages.filter { $0.state == .skipped }.count == 7)
      await expectError(.failedPrecondition, containing: "with legal") {
        try await walk.olivia.act(walk.remedy, Do.apologize())
      }
      await expectError(.permissionDenied, containing: "legal") {
        try await walk.olivia.act(walk.remedy, Do.legal("Sent a letter."))
      }
      try await walk.act(Do.legal("Counsel sent a response letter."), as: People.lena)
      #expect(walk.remedy.legalStatus == "Counsel sent a response letter.")
      try await walk.act(Do.legal("Claim withdrawn.", closed: true), as: People.lena)
      #expect(walk.remedy.hasClosedAt)
      #expect(walk.remedy.nextAction == "Nothing: the legal matter is closed.")
    }
  }

  @Test("an unsatisfied follow-up reopens the remedy at propose, and the next round resolves it", arguments: Backend.allCases)
  func unsatisfiedFollowUpReopens(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toFollowUp()
      try await walk.act(Do.followUp(.unreachable))
      #expect(walk.remedy.currentStage == .followUp)
      #expect(walk.remedy.followUp.scheduledAt.date == harness.clock.now() + 86_400)
      harness.clock.advance(by: 86_400)
      try await walk.act(Do.followUp(.unsatisfied))
      #expect(walk.remedy.status == .open)
      #expect(walk.remedy.currentStage == .propose)
      #expect(walk.remedy.reopenCount == 1)
      #expect(walk.remedy.negotiationStartRound == 2)
      #expect(walk.remedy.stage(.fix).state == .pending)
      #expect(walk.remedy.fix.owner.isEmpty)
      #expect(walk.remedy.followUp.attempts.map(\.outcome) == [.unreachable, .unsatisfied])
      #expect(walk.remedy.nextAction.contains("round 2"))

      try await walk.act(Do.offer(compensation: [1_000]))
      try await walk.act(Do.respond(2, .accepted))
      #expect(walk.remedy.currentStage == .compensate)
      try await walk.act(Do.compensate(1_000, key: "credit-2"))
      #expect(walk.remedy.compensation.issued.amountMinor == 4_000)
      #expect(walk.remedy.currentStage == .fix)
      try await walk.fixEverything()
      try await walk.act(Do.skipGoodwill("Already given a gesture in round one."))
      #expect(walk.remedy.stage(.goodwill).state == .skipped)
      harness.clock.advance(by: 3 * 86_400)
      try await walk.act(Do.followUp(.satisfied, medium: .meeting))
      try await walk.act(Do.learn())
      #expect(walk.remedy.status == .resolved)
    }
  }
}
