import Foundation
import GRPCCore
import RedressRemediation
import RedressSchemas
import Testing

/// The playbook as amends are really made (issue 13): empathy first, verdicts that can be revisited, money that
/// holds up, owners who are people, and many clients hit by one mistake.
@Suite("Making amends")
struct AmendsTests {
  // MARK: 1. Empathy first

  @Test("acknowledging receipt at once stops the acknowledgement clock before any research")
  func receiptStopsTheClock() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness, Incidents.make(priority: .p2))
      try await walk.act(Do.receipt(.phone))
      #expect(walk.remedy.receipt.by == "olivia")
      #expect(walk.remedy.receipt.channel == .phone)
      #expect(walk.remedy.stage(.investigate).state == .active)
      #expect(walk.remedy.timeline.last?.action == "receipt")
      await expectError(.failedPrecondition, containing: "already acknowledged") {
        try await walk.olivia.act(walk.remedy, Do.receipt(.email))
      }
      // Past the acknowledge deadline: nothing fires, the client was answered.
      harness.clock.advance(by: 4 * 3_600 + 60)
      #expect(try await harness.app.timer.checkDeadlines().isEmpty)
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(!walk.remedy.overdue)
      #expect(walk.remedy.escalations.isEmpty)
      // The client's view shows the answer, without who gave it.
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(view.receipt.channel == .phone && view.receipt.by.isEmpty)
      #expect(view.timeline.contains { $0.summary == "We acknowledged your report and will take care of it." })
    }
  }

  @Test("a receipt after the deadline clears the overdue mark but keeps the escalation")
  func lateReceipt() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness, Incidents.make(priority: .p2))
      harness.clock.advance(by: 4 * 3_600)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.overdue)
      try await walk.act(Do.receipt(.email))
      #expect(!walk.remedy.overdue)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:acknowledge"])
    }
  }

  @Test("a public complaint is answered where it was raised and taken to a private channel")
  func publicComplaintGoesPrivate() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness, Incidents.make(channel: .publicSocial))
      #expect(walk.remedy.nextAction.contains("offer a private channel"))
      let error = await expectError(.invalidArgument, containing: "receipt.private_channel") {
        try await walk.olivia.act(walk.remedy, Do.receipt(.publicSocial))
      }
      #expect(error?.message.contains("raised publicly") == true)
      await expectError(.invalidArgument, containing: "must be a private channel") {
        try await walk.olivia.act(walk.remedy, Do.receipt(.publicSocial, privately: .publicSocial))
      }
      try await walk.act(Do.receipt(.publicSocial, privately: .chat))
      #expect(walk.remedy.receipt.privateChannel == .chat)
      #expect(walk.remedy.timeline.last?.summary.contains("offered to continue by") == true)

      // A private complaint is never answered in public.
      let quiet = try await Walk.open(harness, Incidents.make(channel: .email))
      await expectError(.failedPrecondition, containing: "not raised publicly") {
        try await quiet.olivia.act(quiet.remedy, Do.receipt(.publicSocial, privately: .email))
      }
    }
  }

  @Test("an apology on a legal notice is refused for what it is, not as a missing channel")
  func apologyChannels() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate())
      let legal = await expectError(.invalidArgument, containing: "cannot be legal notice") {
        try await walk.olivia.act(walk.remedy, Do.apologize(.legalNotice))
      }
      #expect(legal?.message.contains("is required") == false)
      await expectError(.invalidArgument, containing: "apologize.channel: is required") {
        try await walk.olivia.act(walk.remedy, Do.apologize(.unspecified))
      }
    }
  }

  // MARK: 3. A verdict can be wrong

  @Test("re-investigating changes the verdict and the route, keeps the old one, and stops once an offer is accepted")
  func reinvestigate() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      await expectError(.failedPrecondition, containing: "record the first investigation") {
        try await walk.olivia.act(walk.remedy, Do.reinvestigate("x", as: Do.investigate()))
      }
      try await walk.act(Do.investigate(.outsidePolicy))
      try await walk.act(Do.receipt())
      try await walk.act(Do.decline("Outside the 30-day window."))
      #expect(walk.remedy.status == .declined)

      // The order history shows it was within the window after all: back on the legitimate route.
      let error = await expectError(.invalidArgument, containing: "reinvestigate.reason") {
        try await walk.olivia.act(walk.remedy, Do.reinvestigate("", as: Do.investigate()))
      }
      #expect(error != nil)
      try await walk.act(Do.reinvestigate("The order history shows delivery on day 12.", as: Do.investigate(.legitimate)))
      #expect(walk.remedy.status == .open)
      #expect(walk.remedy.investigation.verdict == .legitimate)
      #expect(walk.remedy.investigation.reason == "The order history shows delivery on day 12.")
      #expect(walk.remedy.previousInvestigations.map(\.verdict) == [.outsidePolicy])
      #expect(walk.remedy.stage(.acknowledge).state == .active)
      #expect(walk.remedy.stage(.propose).state == .pending)
      #expect(walk.remedy.timeline.last?.action == "reinvestigate")
      #expect(walk.remedy.timeline.last?.internal == true)
      #expect(walk.remedy.timeline.last?.summary.contains("The verdict was outside policy") == true)

      try await walk.act(Do.apologize())
      #expect(walk.remedy.currentStage == .propose)
      try await walk.act(Do.offer())
      await expectError(.failedPrecondition, containing: "awaits the client's answer") {
        try await walk.olivia.act(walk.remedy, Do.reinvestigate("again", as: Do.investigate(.thirdParty, thirdParty: "FastFreight")))
      }
      try await walk.act(Do.respond(0, .accepted))
      await expectError(.failedPrecondition, containing: "can no longer change") {
        try await walk.olivia.act(walk.remedy, Do.reinvestigate("again", as: Do.investigate(.thirdParty, thirdParty: "FastFreight")))
      }
    }
  }

  @Test("re-investigating after the apology can send a claim to legal or to the third party")
  func reinvestigateAfterApology() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.reinvestigate("The carrier's scan shows the damage.", as: Do.investigate(.thirdParty, thirdParty: "FastFreight")))
      #expect(walk.remedy.stage(.acknowledge).state == .done)
      #expect(walk.remedy.stage(.propose).state == .pending)
      #expect(walk.remedy.nextAction.contains("Refer the claim to FastFreight"))
      try await walk.act(Do.refer())
      #expect(walk.remedy.status == .referred)
      try await walk.act(
        Do.reinvestigate("The demand letter is forged.", as: Do.investigate(.badFaith, legalOwner: "Lena Park")))
      #expect(walk.remedy.status == .withLegal)
      #expect(walk.remedy.owner == "Lena Park")
      #expect(walk.remedy.previousInvestigations.map(\.verdict) == [.legitimate, .thirdParty])
      #expect(walk.remedy.referralHistory.count == 1)
      #expect(walk.remedy.legalHistory.map(\.text) == ["Escalated to legal; owned by Lena Park."])
    }
  }

  // MARK: 4. Extent

  @Test("the extent is required: at least one client, orders not negative, a cost estimate")
  func extentIsRequired() async throws {
    try await RemediationHarness.run { harness in
      let walk = try await Walk.open(harness)
      guard case .investigate(var request) = Do.investigate() else { return }
      request.clearExtent()
      var fields = try await Self.violations { try await walk.olivia.act(walk.remedy, .investigate(request)) }
      #expect(fields == ["investigate.extent"])
      request.extent = .with {
        $0.clientsAffected = 0
        $0.ordersAffected = -1
      }
      fields = try await Self.violations { try await walk.olivia.act(walk.remedy, .investigate(request)) }
      #expect(
        fields == ["investigate.extent.clients_affected", "investigate.extent.orders_affected", "investigate.extent.cost_estimate"]
      )
      request.extent = .with {
        $0.clientsAffected = 1
        $0.costEstimate = .with { $0.currency = "EUR" }  // 0: it cost nothing; orders 0: none involved
      }
      let investigated = try await walk.olivia.act(walk.remedy, .investigate(request))
      #expect(investigated.investigation.extent.clientsAffected == 1)
    }
  }

  // MARK: 5. Legal and referral history

  @Test("every legal update and referral note is an entry of its own, with who and when")
  func histories() async throws {
    try await RemediationHarness.run { harness in
      var legal = try await Walk.open(harness)
      try await legal.act(Do.investigate(.badFaith, legalOwner: "Lena Park"))
      try await legal.act(Do.legal("Demand letter received; reviewing."), as: People.lena)
      harness.clock.advance(by: 86_400)
      try await legal.act(Do.legal("Settled without payment.", closed: true), as: People.lena)
      #expect(legal.remedy.legalHistory.map(\.text) == [
        "Escalated to legal; owned by Lena Park.", "Demand letter received; reviewing.", "Settled without payment.",
      ])
      #expect(legal.remedy.legalHistory.map(\.by) == ["olivia", "lena", "lena"])
      #expect(legal.remedy.legalHistory.map(\.closed) == [false, false, true])
      #expect(legal.remedy.legalHistory[2].at.date == legal.remedy.legalHistory[1].at.date + 86_400)
      #expect(legal.remedy.legalStatus == "Settled without payment.")

      var referred = try await Walk.open(harness)
      try await referred.act(Do.investigate(.thirdParty, thirdParty: "FastFreight"))
      try await referred.act(Do.apologize())
      try await referred.act(Do.refer())
      try await referred.act(Do.refer(notes: "FastFreight opened claim FF-99."))
      try await referred.act(Do.refer(notes: "FastFreight refunded the client.", closed: true))
      #expect(referred.remedy.referralHistory.count == 3)
      #expect(referred.remedy.referralHistory.map(\.text).last == "FastFreight refunded the client.")
      #expect(referred.remedy.referralHistory.last?.closed == true)
    }
  }

  // MARK: 6. Approvals can be refused

  @Test("an approver rejects, the requester withdraws; both free the budget and the remedy moves on")
  func rejectAndWithdraw() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer(compensation: [25_000]), as: People.alice)
      try await walk.act(Do.respond(1, .accepted))
      try await walk.act(Do.compensate(25_000, key: "first"), as: People.alice)
      #expect(walk.remedy.compensation.committed.amountMinor == 25_000)
      #expect(walk.remedy.nextAction.contains("may withdraw it"))
      await expectError(.permissionDenied, containing: "approver") {
        try await walk.olivia.act(walk.remedy, Do.reject("cmp-1"))
      }
      await expectError(.invalidArgument, containing: "reject.reason") {
        try await harness.desk(People.aaron).act(walk.remedy, Do.reject("cmp-1", ""))
      }
      try await walk.act(Do.reject("cmp-1", "Pay it as an invoice credit in two parts."), as: People.aaron)
      let rejected = walk.remedy.compensation.items[0]
      #expect(rejected.state == .rejected)
      #expect(rejected.decidedBy == "aaron" && rejected.decisionReason == "Pay it as an invoice credit in two parts.")
      #expect(walk.remedy.compensation.committed.amountMinor == 0)
      #expect(walk.remedy.currentStage == .compensate)
      await expectError(.failedPrecondition, containing: "rejected") {
        try await harness.desk(People.aaron).act(walk.remedy, Do.approve("cmp-1"))
      }
      // The same key names the rejected item: a new request needs a new key.
      try await walk.act(Do.compensate(12_500, key: "second"), as: People.alice)
      #expect(walk.remedy.compensation.items.map(\.id) == ["cmp-1", "cmp-2"])
      await expectError(.permissionDenied, containing: "only its requester") {
        try await walk.olivia.act(walk.remedy, Do.withdraw("cmp-2"))
      }
      try await walk.act(Do.withdraw("cmp-2"), as: People.alice)
      #expect(walk.remedy.compensation.items[1].state == .withdrawn)
      #expect(walk.remedy.compensation.committed.amountMinor == 0)
      try await walk.act(Do.compensate(10_000, key: "third"))
      try await walk.act(Do.compensate(10_000, key: "fourth"))
      try await walk.act(Do.compensate(5_000, key: "fifth"))
      #expect(walk.remedy.compensation.issued.amountMinor == 25_000)
      #expect(walk.remedy.currentStage == .fix)
      // Client tools never see refused items.
      #expect(walk.remedy.clientView.compensation.items.allSatisfy { $0.state == .issued })
      #expect(!walk.remedy.clientView.timeline.contains { $0.summary.contains("rejected") || $0.summary.contains("withdrawn") })
    }
  }

  // MARK: 7. Money per currency

  @Test("budgets and the approval threshold are per currency, in its minor units")
  func perCurrency() async throws {
    try await RemediationHarness.run { harness in
      let jpy = try await harness.open(Incidents.make(currency: "JPY"))
      #expect(jpy.compensation.budget == .with { $0.currency = "JPY"; $0.amountMinor = 75_000 })
      #expect(jpy.goodwill.budget.amountMinor == 15_000)
      let usd = try await harness.open(Incidents.make(currency: "USD"))
      #expect(usd.compensation.budget.amountMinor == 50_000)

      // ¥12,000 is issued at once (threshold ¥15,000); in USD 120.00 would need an approver.
      var yen = Walk(harness: harness, remedy: jpy)
      try await yen.toPropose()
      try await yen.act(Do.offer(compensation: [12_000], currency: "JPY"))
      try await yen.act(Do.respond(1, .accepted))
      try await yen.act(Do.compensate(12_000, key: "yen", currency: "JPY"))
      #expect(yen.remedy.compensation.items[0].state == .issued)

      // A currency nobody listed: every item waits for an approver.
      var dinar = try await Walk.open(harness, Incidents.make(currency: "KWD"))
      try await dinar.toPropose()
      try await dinar.act(Do.offer(compensation: [1_000], currency: "KWD"))
      try await dinar.act(Do.respond(1, .accepted))
      try await dinar.act(Do.compensate(1_000, key: "kwd", currency: "KWD"))
      #expect(dinar.remedy.compensation.items[0].state == .awaitingApproval)
    }
  }

  // MARK: 8. Pay what was agreed

  @Test("compensation must match the accepted offer's terms; anything else needs a reason and an approver")
  func payWhatWasAgreed() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toCompensate(compensation: [3_000])
      await expectError(.failedPrecondition, containing: "has no refund") {
        try await walk.olivia.act(walk.remedy, Do.compensate(3_000, key: "r", kind: .refund))
      }
      await expectError(.failedPrecondition, containing: "leaves 30.00 USD of invoice credit") {
        try await walk.olivia.act(walk.remedy, Do.compensate(4_000, key: "c"))
      }
      try await walk.act(Do.compensate(2_000, key: "part-1"))
      await expectError(.failedPrecondition, containing: "leaves 10.00 USD") {
        try await walk.olivia.act(walk.remedy, Do.compensate(2_000, key: "part-2"))
      }
      // The client asked for a refund instead of the rest of the credit: paid with a reason, after approval,
      // though 10.00 is below the approval threshold.
      try await walk.act(Do.compensate(1_000, key: "refund", kind: .refund, offTerms: "The client closed the account."))
      let item = walk.remedy.compensation.items[1]
      #expect(item.state == .awaitingApproval)
      #expect(item.offTermsReason == "The client closed the account.")
      try await walk.act(Do.approve(item.id), as: People.aaron)
      #expect(walk.remedy.currentStage == .fix)
    }
  }

  // MARK: 9. Owners are people

  @Test("fix, prevention and legal owners are people, not teams; a people directory makes it exact")
  func ownersArePeople() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      await expectError(.invalidArgument, containing: "must name a person, not a team") {
        try await walk.olivia.act(walk.remedy, Do.investigate(.badFaith, legalOwner: "Legal department"))
      }
      try await walk.toFix()
      for team in ["content team", "Support", "warehouse ops", "Everyone"] {
        await expectError(.invalidArgument, containing: "fix.assign.owner") {
          try await walk.olivia.act(walk.remedy, Do.assignFix(owner: team, due: harness.clock.now() + 86_400))
        }
      }
      try await walk.act(Do.assignFix(owner: "Dana Reyes", due: harness.clock.now() + 86_400))
    }
    try await RemediationHarness.run(configure: { $0.policy.people = ["Dana Reyes", "Support Sam"] }) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toFix()
      await expectError(.invalidArgument, containing: "not in the people directory") {
        try await walk.olivia.act(walk.remedy, Do.assignFix(owner: "Zed Unknown", due: harness.clock.now() + 86_400))
      }
      // Listed, so a person, whatever the name holds.
      try await walk.act(Do.assignFix(owner: "Support Sam", due: harness.clock.now() + 86_400))
      #expect(walk.remedy.fix.owner == "Support Sam")
    }
  }

  // MARK: 12. Deadlines fire independently

  @Test("the fix deadline fires even when the resolve deadline fired first while the fix was active")
  func fixDeadlineAfterResolve() async throws {
    try await RemediationHarness.run { harness in
      let opened = harness.clock.now()
      var walk = try await Walk.open(harness, Incidents.make(priority: .p2))  // resolve in 3 days
      try await walk.act(Do.receipt())
      try await walk.toFix()
      try await walk.act(Do.assignFix(due: opened + 4 * 86_400))
      harness.clock.advance(by: 3 * 86_400)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:resolve"])
      #expect(walk.remedy.stage(.fix).overdue)
      #expect(Playbook.nextDeadline(of: walk.remedy) == opened + 4 * 86_400)
      harness.clock.advance(by: 86_400)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:resolve", "overdue:fix"])
      #expect(walk.remedy.fix.deadlineFired)
      harness.clock.advance(by: 86_400)
      #expect(try await harness.app.timer.checkDeadlines().isEmpty)
      // Reassigned with a new due date: that one fires in its turn.
      try await walk.act(Do.assignFix(owner: "Sam Okafor", due: harness.clock.now() + 3_600))
      #expect(!walk.remedy.fix.deadlineFired)
      harness.clock.advance(by: 3_600)
      #expect(try await harness.app.timer.checkDeadlines() == [walk.remedy.id])
      walk.remedy = try await walk.olivia.get(walk.remedy.id)
      #expect(walk.remedy.escalations.map(\.kind) == ["overdue:resolve", "overdue:fix", "overdue:fix"])
    }
  }

  /// The fields a call's `INVALID_ARGUMENT` names, in order.
  static func violations(_ call: () async throws -> Redress_V1_Remedy) async throws -> [String] {
    do {
      _ = try await call()
      Issue.record("the call was accepted")
      return []
    } catch let error as RPCError {
      #expect(error.code == .invalidArgument)
      let status = try error.unpackGoogleRPCStatus()
      return (status?.details ?? []).compactMap { $0.badRequest }.flatMap(\.violations).map(\.field)
    }
  }
}
