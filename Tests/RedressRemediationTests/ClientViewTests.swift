import Foundation
import GRPCCore
import RedressSchemas
import SwiftProtobuf
import Testing

/// The client view is an allow-list: at every stage of every route, nothing in it names staff, the verdict,
/// a third party, legal, budgets, approvers or internal text (issue 11, finding 5).
@Suite("Client view")
struct ClientViewTests {
  /// Words that must never reach a client tool: staff names, the investigation's text, internal notes.
  static let staffAndInternals = [
    "olivia", "alice", "aaron", "lena", "omar",
    "label printer", "night shift", "SECRET", "legitimate", "third party", "third_party", "thirdParty",
    "bad faith", "bad_faith", "badFaith", "outside policy", "outsidePolicy", "legal",
  ]

  /// Reads the remedy as the client tool (get, list and a watch snapshot) and checks each.
  static func check(_ harness: RemediationHarness, _ id: String, allowing allowed: [String] = [], _ moment: String) async throws {
    let portal = harness.desk(People.portal)
    let got = try await portal.get(id)
    let listed = try #require(try await portal.list().remedies.first { $0.id == id })
    for view in [got, listed] {
      let text = try view.jsonString()
      for word in Self.staffAndInternals where !allowed.contains(word) {
        #expect(!text.localizedCaseInsensitiveContains(word), "\(moment): the client view shows '\(word)': \(text)")
      }
      #expect(!view.hasInvestigation && view.escalations.isEmpty && !view.hasLesson && view.owner.isEmpty, "\(moment)")
      #expect(view.legalStatus.isEmpty && view.referralStatus.isEmpty && view.recurrenceOf.isEmpty, "\(moment)")
      #expect(!view.compensation.hasBudget && !view.compensation.hasCommitted && !view.goodwill.hasBudget, "\(moment)")
      #expect(view.compensation.items.allSatisfy { $0.requestedBy.isEmpty && $0.approvedBy.isEmpty && $0.state == .issued }, "\(moment)")
      #expect(view.timeline.allSatisfy { $0.actor.isEmpty }, "\(moment)")
      #expect(view.stages.allSatisfy { $0.actor.isEmpty && $0.notes.isEmpty && $0.skipReason.isEmpty }, "\(moment)")
      #expect(view.status != .withLegal, "\(moment)")
    }
  }

  @Test("a legitimate claim, at every stage, with approval by a second identity")
  func legitimate() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await Self.check(harness, walk.remedy.id, "opened")
      try await walk.act(Do.escalate("VIP SECRET escalation"))
      try await walk.act(Do.investigate(.legitimate))
      try await walk.act(Do.note("SECRET internal: tough client", internal: true))
      try await Self.check(harness, walk.remedy.id, "investigated")
      try await walk.act(Do.apologize())
      try await Self.check(harness, walk.remedy.id, "apologized")
      try await walk.act(Do.offer(compensation: [25_000]), as: People.alice)
      try await Self.check(harness, walk.remedy.id, "offered")
      try await walk.act(Do.respond(1, .accepted), as: People.portal)
      try await walk.act(Do.compensate(25_000, key: "big"), as: People.alice)
      try await Self.check(harness, walk.remedy.id, "compensation awaiting approval")
      let awaiting = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(awaiting.compensation.items.isEmpty, "an item awaiting approval is not the client's yet")
      try await walk.act(Do.approve("cmp-1"), as: People.aaron)
      try await Self.check(harness, walk.remedy.id, "compensation approved")
      try await walk.fixEverything()
      try await Self.check(harness, walk.remedy.id, "fixed")
      try await walk.act(Do.goodwill())
      harness.clock.advance(by: 3 * 86_400)
      try await walk.act(Do.followUp(.satisfied))
      try await Self.check(harness, walk.remedy.id, "followed up")
      try await walk.act(Do.learn())
      try await Self.check(harness, walk.remedy.id, "resolved")
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(view.status == .resolved)
      #expect(view.compensation.issued.amountMinor == 25_000)
      #expect(view.timeline.map(\.action).contains("offer"))
    }
  }

  @Test("a third party's doing, referred")
  func thirdParty() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.thirdParty, thirdParty: "Carrier SECRET Freight"))
      try await Self.check(harness, walk.remedy.id, "third party found")
      try await walk.act(Do.apologize())
      try await walk.act(Do.refer("Carrier SECRET Freight", notes: "Claim SECRET-77 filed"))
      try await Self.check(harness, walk.remedy.id, "referred")
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(view.status == .referred)
    }
  }

  @Test("outside policy, declined: the decline's clause and reason are for the client")
  func outsidePolicy() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.outsidePolicy))
      try await Self.check(harness, walk.remedy.id, "outside policy found")
      try await walk.act(Do.apologize())
      try await walk.act(Do.decline())
      try await Self.check(harness, walk.remedy.id, "declined")
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(view.status == .declined)
      #expect(view.timeline.contains { $0.action == "decline" && $0.summary.contains("30-day") })
    }
  }

  @Test("a bad-faith demand with legal: the client sees an open remedy, never legal or its owner")
  func badFaith() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.badFaith, legalOwner: "lena"))
      try await Self.check(harness, walk.remedy.id, "sent to legal")
      try await walk.act(Do.legal("SECRET: counsel drafting a reply"), as: People.lena)
      try await Self.check(harness, walk.remedy.id, "legal update")
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(view.status == .open)
      #expect(view.nextAction == "We are looking into what happened and will get back to you.")
    }
  }
}
