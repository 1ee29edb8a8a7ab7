import Foundation
import GRPCCore
import GRPCProtobuf
import RedressSchemas
import Testing

/// Every rule the service enforces, each answered with the status the API promises and a message saying
/// what must happen first.
@Suite("Playbook rules")
struct PlaybookRuleTests {
  @Test("stage order: no apology before the investigation, no offer before the apology, no compensation before acceptance")
  func stageOrder() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      let olivia = walk.olivia
      await expectError(.failedPrecondition, containing: "investigate first") {
        try await olivia.act(walk.remedy, Do.apologize())
      }
      await expectError(.failedPrecondition, containing: "investigate first") {
        try await olivia.act(walk.remedy, Do.offer())
      }
      try await walk.act(Do.investigate())
      await expectError(.failedPrecondition, containing: "apologize first") {
        try await olivia.act(walk.remedy, Do.offer())
      }
      await expectError(.failedPrecondition, containing: "already done") {
        try await olivia.act(walk.remedy, Do.investigate())
      }
      try await walk.act(Do.apologize())
      await expectError(.failedPrecondition, containing: "accept an offer first") {
        try await olivia.act(walk.remedy, Do.compensate(100, key: "k"))
      }
      await expectError(.failedPrecondition, containing: "No offer awaits an answer") {
        try await olivia.act(walk.remedy, Do.respond(1, .accepted))
      }
      await expectError(.failedPrecondition, containing: "propose stage comes first") {
        try await olivia.act(walk.remedy, Do.learn())
      }
      // Nothing above changed the remedy.
      #expect(try await olivia.get(walk.remedy.id).version == walk.remedy.version)
    }
  }

  @Test("an apology on a public channel is refused; the complaint must be answered privately")
  func publicApologyRefused() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness, Incidents.make(channel: .publicSocial))
      try await walk.act(Do.investigate())
      #expect(walk.remedy.nextAction.contains("private channel"))
      await expectError(.failedPrecondition, containing: "privately") {
        try await walk.olivia.act(walk.remedy, Do.apologize(.publicSocial))
      }
      try await walk.act(Do.apologize(.phone))
      #expect(walk.remedy.stage(.acknowledge).state == .done)
    }
  }

  @Test("offers: one open offer at a time, the answer must name its round, and counters open the next round")
  func offerRounds() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer())
      await expectError(.failedPrecondition, containing: "awaits the client's answer") {
        try await walk.olivia.act(walk.remedy, Do.offer())
      }
      await expectError(.failedPrecondition, containing: "round 1, not 2") {
        try await walk.olivia.act(walk.remedy, Do.respond(2, .accepted))
      }
      let error = await expectError(.invalidArgument, containing: "respond.counter_terms") {
        try await walk.olivia.act(walk.remedy, Do.respond(1, .countered))
      }
      let status = try error?.unpackGoogleRPCStatus()
      let fields = status?.details.compactMap { $0.badRequest }.flatMap(\.violations).map(\.field)
      #expect(fields == ["respond.counter_terms"])
      try await walk.act(Do.respond(1, .countered, counter: "Credit of 50.00 and a refund of shipping."))
      #expect(walk.remedy.offers[0].counterTerms == "Credit of 50.00 and a refund of shipping.")
      try await walk.act(Do.offer(compensation: [5_000]))
      #expect(walk.remedy.offers.last?.round == 2)
    }
  }

  @Test("after the configured number of rounds the remedy escalates and the next offer needs an approver")
  func negotiationEscalates() async throws {
    try await RemediationHarness.run(configure: { $0.policy.maxNegotiationRounds = 2 }) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer(compensation: [1_000]))
      try await walk.act(Do.respond(1, .rejected, reason: "no"))
      #expect(walk.remedy.escalations.isEmpty)
      try await walk.act(Do.offer(compensation: [2_000]))
      try await walk.act(Do.respond(2, .rejected, reason: "still no"))
      #expect(walk.remedy.escalations.map(\.kind) == ["negotiation-rounds"])
      #expect(walk.remedy.nextAction.contains("approver"))
      await expectError(.permissionDenied, containing: "approver role") {
        try await walk.olivia.act(walk.remedy, Do.offer(compensation: [3_000]))
      }
      try await walk.act(Do.offer(compensation: [3_000]), as: People.alice)
      #expect(walk.remedy.offers.last?.proposedBy == "alice")
    }
  }

  @Test("compensation above the threshold waits for a different identity with the approver role")
  func approvalBySecondIdentity() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer(compensation: [25_000]), as: People.alice)
      try await walk.act(Do.respond(1, .accepted))
      try await walk.act(Do.compensate(25_000, key: "big"), as: People.alice)
      let item = try #require(walk.remedy.compensation.items.first)
      #expect(item.state == .awaitingApproval)
      #expect(walk.remedy.compensation.committed.amountMinor == 25_000)
      #expect(walk.remedy.compensation.issued.amountMinor == 0)
      #expect(walk.remedy.nextAction.contains("approve or reject compensation cmp-1"))
      await expectError(.failedPrecondition, containing: "must be approved first") {
        try await walk.olivia.act(walk.remedy, Do.assignFix(due: harness.clock.now() + 86_400))
      }
      await expectError(.permissionDenied, containing: "approver") {
        try await walk.olivia.act(walk.remedy, Do.approve("cmp-1"))
      }
      await expectError(.failedPrecondition, containing: "different identity") {
        try await harness.desk(People.alice).act(walk.remedy, Do.approve("cmp-1"))
      }
      await expectError(.notFound, containing: "cmp-9") {
        try await harness.desk(People.aaron).act(walk.remedy, Do.approve("cmp-9"))
      }
      try await walk.act(Do.approve("cmp-1"), as: People.aaron)
      #expect(walk.remedy.compensation.items[0].state == .issued)
      #expect(walk.remedy.compensation.items[0].approvedBy == "aaron")
      #expect(walk.remedy.compensation.issued.amountMinor == 25_000)
      #expect(walk.remedy.currentStage == .fix)
      await expectError(.failedPrecondition, containing: "already issued") {
        try await harness.desk(People.aaron).act(walk.remedy, Do.approve("cmp-1"))
      }
    }
  }

  @Test("the compensation and goodwill budgets cannot be exceeded")
  func budgets() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      await expectError(.failedPrecondition, containing: "exceeds what is left of the budget") {
        try await walk.olivia.act(walk.remedy, Do.offer(compensation: [30_000, 30_000]))
      }
      try await walk.act(Do.offer(compensation: [40_000]))
      try await walk.act(Do.respond(1, .accepted))
      try await walk.act(Do.compensate(9_000, key: "a"))
      await expectError(.failedPrecondition, containing: "at most 410.00 USD more") {
        try await walk.olivia.act(walk.remedy, Do.compensate(45_000, key: "b", offTerms: "The client asked for more."))
      }
      try await walk.act(Do.compensate(9_000, key: "b"))
      try await walk.act(Do.compensate(9_000, key: "c"))
      try await walk.act(Do.compensate(9_000, key: "d"))
      try await walk.act(Do.compensate(4_000, key: "e"))
      #expect(walk.remedy.compensation.issued.amountMinor == 40_000)
      #expect(walk.remedy.currentStage == .fix)
      try await walk.fixEverything()
      await expectError(.failedPrecondition, containing: "goodwill budget of 100.00 USD") {
        try await walk.olivia.act(walk.remedy, Do.goodwill(10_001))
      }
      try await walk.act(Do.goodwill(10_000))
      #expect(walk.remedy.goodwill.issued.amountMinor == 10_000)
    }
  }

  @Test("amounts near Int64.max are refused naming the field, and the service keeps answering (issue 11, finding 1)")
  func hugeAmountsRefused() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      // Two terms of Int64.max used to trap summing the offer, killing the process and every watch.
      let offer = await expectError(.invalidArgument, containing: "at most 10000000000000 minor units") {
        try await walk.olivia.act(walk.remedy, Do.offer(compensation: [.max, .max]))
      }
      #expect(
        Self.fields(offer) == ["offer.compensation[0].amount.amount_minor", "offer.compensation[1].amount.amount_minor"]
      )
      try await walk.act(Do.offer(compensation: [40_000]))
      try await walk.act(Do.respond(1, .accepted))
      try await walk.act(Do.compensate(9_000, key: "a"))
      // An amount near Int64.max after an earlier item used to overflow the committed total.
      let compensate = await expectError(.invalidArgument) {
        try await walk.olivia.act(walk.remedy, Do.compensate(.max - 1, key: "b"))
      }
      #expect(Self.fields(compensate) == ["compensate.amount.amount_minor"])
      try await walk.act(Do.compensate(9_000, key: "c"))
      try await walk.act(Do.compensate(9_000, key: "d"))
      try await walk.act(Do.compensate(9_000, key: "e"))
      try await walk.act(Do.compensate(4_000, key: "f"))
      try await walk.fixEverything()
      let goodwill = await expectError(.invalidArgument) {
        try await walk.olivia.act(walk.remedy, Do.goodwill(.max))
      }
      #expect(Self.fields(goodwill) == ["goodwill.gesture.value.amount_minor"])
      try await walk.act(Do.goodwill(10_000))
      #expect(walk.remedy.goodwill.issued.amountMinor == 10_000)
      #expect(walk.remedy.compensation.issued.amountMinor == 40_000)
    }
  }

  @Test("text with terminal escapes or bidi overrides is refused, and oversized ids and filters are bounded (issue 11, findings 7 and 8)")
  func hostileText() async throws {
    try await RemediationHarness.run { harness in
      let walk = try await Walk.open(harness)
      let escape = await expectError(.invalidArgument, containing: "control characters") {
        try await harness.desk(People.portal).act(walk.remedy, Do.note("ok\u{1B}]52;c;cm0gLXJm\u{07}", internal: false))
      }
      #expect(Self.fields(escape) == ["note.text"])
      await expectError(.invalidArgument, containing: "bidirectional override") {
        try await walk.olivia.act(walk.remedy, Do.note("refund \u{202E}009", internal: true))
      }
      // Free text keeps its line breaks.
      try await walk.olivia.act(walk.remedy, Do.note("Called twice.\nLeft a message.", internal: true))

      let huge = String(repeating: "r", count: 1024 * 1024)
      let get = await expectError(.invalidArgument, containing: "remedy_id") { try await walk.olivia.get(huge) }
      #expect((get?.message.utf8.count ?? .max) < 1024, "the answer echoed the id")
      await expectError(.invalidArgument, containing: "remedy_id") {
        try await walk.olivia.act(huge, version: 1, Do.note("x", internal: true))
      }
      let list = await expectError(.invalidArgument) {
        try await walk.olivia.list(.with {
          $0.statuses = Array(repeating: .open, count: 10_000)
          $0.owner = huge
        })
      }
      #expect(Self.fields(list) == ["statuses", "owner"])
    }
  }

  static func fields(_ error: RPCError?) -> [String] {
    let status = try? error?.unpackGoogleRPCStatus()
    return status?.details.compactMap { $0.badRequest }.flatMap(\.violations).map(\.field) ?? []
  }

  @Test("issuing compensation is idempotent by key; a key reused for different terms is refused")
  func idempotentIssuing() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toCompensate(compensation: [3_000, 2_000])
      let before = walk.remedy
      try await walk.act(Do.compensate(3_000, key: "credit-1"))
      let first = walk.remedy
      // A retry of the same request, even with the version it was first sent with, changes nothing.
      let retried = try await walk.olivia.act(before.id, version: before.version, Do.compensate(3_000, key: "credit-1"))
      #expect(retried == first)
      #expect(retried.compensation.items.count == 1)
      await expectError(.failedPrecondition, containing: "Idempotency key 'credit-1'") {
        try await walk.olivia.act(first, Do.compensate(2_000, key: "credit-1"))
      }
      try await walk.act(Do.compensate(2_000, key: "credit-2"))
      #expect(walk.remedy.compensation.items.map(\.id) == ["cmp-1", "cmp-2"])
      #expect(walk.remedy.currentStage == .fix)
    }
  }

  @Test("a stale expected_version answers ABORTED and changes nothing")
  func staleVersion() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      let stale = walk.remedy
      try await walk.act(Do.investigate())
      await expectError(.aborted, containing: "retry with expected_version 2") {
        try await harness.desk(People.omar).act(stale, Do.note("late", internal: true))
      }
      await expectError(.invalidArgument, containing: "expected_version") {
        try await harness.desk(People.omar).act(stale.id, version: 0, Do.note("no version", internal: true))
      }
      #expect(try await walk.olivia.get(stale.id).version == 2)
    }
  }

  @Test("two identities acting on the same version at once: exactly one wins, the other gets ABORTED")
  func concurrentActions() async throws {
    try await RemediationHarness.run { harness in
      let remedy = try await harness.open()
      let outcomes = await withTaskGroup(of: Result<Redress_V1_Remedy, RPCError>.self) { group in
        for person in [People.olivia, People.omar, People.alice] {
          group.addTask {
            do {
              return .success(try await harness.desk(person).act(remedy, Do.investigate()))
            } catch let error as RPCError {
              return .failure(error)
            } catch {
              return .failure(RPCError(code: .unknown, message: "\(error)"))
            }
          }
        }
        return await group.reduce(into: []) { $0.append($1) }
      }
      let winners = outcomes.compactMap { try? $0.get() }
      let losers = outcomes.compactMap { outcome -> RPCError? in
        if case .failure(let error) = outcome { return error }
        return nil
      }
      #expect(winners.count == 1)
      #expect(losers.map(\.code) == [.aborted, .aborted])
      let stored = try await harness.desk(People.rita).get(remedy.id)
      #expect(stored.version == 2)
      #expect(stored.timeline.filter { $0.action == "investigate" }.count == 1)
    }
  }

  @Test("the fix needs a named owner and a due date, then done, verified and confirmed in that order")
  func fixOrder() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toFix()
      let olivia = walk.olivia
      await expectError(.failedPrecondition, containing: "Assign the fix") {
        try await olivia.act(walk.remedy, Do.fixDone)
      }
      await expectError(.failedPrecondition, containing: "done and verified") {
        try await olivia.act(walk.remedy, Do.fixConfirmed)
      }
      await expectError(.invalidArgument, containing: "fix.assign.due_at: must be in the future") {
        try await olivia.act(walk.remedy, Do.assignFix(due: harness.clock.now() - 60))
      }
      await expectError(.invalidArgument, containing: "fix.assign.owner") {
        try await olivia.act(walk.remedy, Do.assignFix(owner: " ", due: harness.clock.now() + 60))
      }
      try await walk.act(Do.assignFix(owner: "Sam Rivera", due: harness.clock.now() + 3_600))
      #expect(walk.remedy.owner == "Sam Rivera")
      await expectError(.failedPrecondition, containing: "done before it is verified") {
        try await olivia.act(walk.remedy, Do.fixVerified)
      }
      try await walk.act(Do.fixDone)
      await expectError(.failedPrecondition, containing: "verified before the client confirms") {
        try await olivia.act(walk.remedy, Do.fixConfirmed)
      }
      try await walk.act(Do.fixVerified)
      try await walk.act(Do.fixConfirmed)
      #expect(walk.remedy.currentStage == .goodwill)
    }
  }

  @Test("follow-up: not before its scheduled day, a call or meeting unless a reason is given")
  func followUpRules() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toFix()
      try await walk.fixEverything()
      try await walk.act(Do.goodwill())
      await expectError(.failedPrecondition, containing: "scheduled for") {
        try await walk.olivia.act(walk.remedy, Do.followUp(.satisfied))
      }
      harness.clock.advance(by: 3 * 86_400)
      await expectError(.invalidArgument, containing: "follow_up.medium_reason") {
        try await walk.olivia.act(walk.remedy, Do.followUp(.satisfied, medium: .message))
      }
      try await walk.act(Do.followUp(.satisfied, medium: .message, reason: "The client asked for email only."))
      #expect(walk.remedy.followUp.attempts.last?.mediumReason == "The client asked for email only.")
      #expect(walk.remedy.currentStage == .learn)
    }
  }

  @Test("skips need a reason and only compensate, fix, goodwill and follow-up can be skipped")
  func skips() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      await expectError(.failedPrecondition, containing: "cannot be skipped") {
        try await walk.olivia.act(walk.remedy, Do.skip(.investigate, "obvious"))
      }
      await expectError(.invalidArgument, containing: "skip.reason") {
        try await walk.olivia.act(walk.remedy, Do.skip(.fix, ""))
      }
      try await walk.toCompensate()
      await expectError(.failedPrecondition, containing: "compensate stage comes first") {
        try await walk.olivia.act(walk.remedy, Do.skip(.goodwill, "later"))
      }
      try await walk.act(Do.skip(.compensate, "The client preferred the fix alone."))
      #expect(walk.remedy.stage(.compensate).skipReason == "The client preferred the fix alone.")
      try await walk.act(Do.skip(.fix, "The billing error was corrected by the credit."))
      #expect(walk.remedy.currentStage == .goodwill)
      #expect(walk.remedy.followUp.scheduledAt.date == harness.clock.now() + 3 * 86_400)
      await expectError(.invalidArgument, containing: "goodwill.skip_reason") {
        try await walk.olivia.act(walk.remedy, Do.skipGoodwill("  "))
      }
    }
  }

  @Test("a declined, referred or resolved remedy takes no further playbook actions; decline and refer need their verdicts")
  func terminalStatesAndVerdicts() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      try await walk.toLearn()
      await expectError(.failedPrecondition, containing: "found outside policy") {
        try await walk.olivia.act(walk.remedy, Do.decline())
      }
      await expectError(.failedPrecondition, containing: "third party") {
        try await walk.olivia.act(walk.remedy, Do.refer("Someone"))
      }
      await expectError(.invalidArgument, containing: "learn.fingerprint") {
        try await walk.olivia.act(walk.remedy, Do.learn(fingerprint: "Not A Fingerprint!"))
      }
      try await walk.act(Do.learn())
      await expectError(.failedPrecondition, containing: "resolved") {
        try await walk.olivia.act(walk.remedy, Do.goodwill(1_000, key: "gw-2"))
      }
      // A retry of the goodwill already given (same key and terms) still answers with the remedy.
      #expect(try await walk.olivia.act(walk.remedy, Do.goodwill()).version == walk.remedy.version)
      await expectError(.failedPrecondition, containing: "resolved") {
        try await walk.olivia.act(walk.remedy, Do.escalate("too late"))
      }
      // Notes are still welcome.
      try await walk.act(Do.note("Client sent a thank-you card.", internal: false))
      #expect(walk.remedy.timeline.last?.action == "note")
    }
  }

  @Test("roles: each action needs its role, and a client tool may only answer, confirm and add visible notes")
  func roles() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      let portal = harness.desk(People.portal)
      await expectError(.permissionDenied, containing: "needs the role operator") {
        try await portal.act(walk.remedy, Do.investigate())
      }
      await expectError(.permissionDenied, containing: "needs the role operator") {
        try await harness.desk(People.aaron).act(walk.remedy, Do.investigate())
      }
      await expectError(.permissionDenied) {
        try await harness.desk(People.rita).act(walk.remedy, Do.investigate())
      }
      await expectError(.permissionDenied, containing: "service") {
        try await walk.olivia.open(Incidents.make())
      }
      await expectError(.permissionDenied, containing: "internal to false") {
        try await portal.act(walk.remedy, Do.note("secret", internal: true))
      }
      try await walk.act(Do.note("We are on it.", internal: false), as: People.portal)
      try await walk.act(Do.escalate("VIP client"), as: People.aaron)
      #expect(walk.remedy.escalations.map(\.by) == ["aaron"])
    }
  }

  @Test("malformed actions answer INVALID_ARGUMENT listing every field to fix")
  func invalidArguments() async throws {
    try await RemediationHarness.run { harness in
      var walk = try await Walk.open(harness)
      let error = await expectError(.invalidArgument) {
        try await walk.olivia.act(walk.remedy, .investigate(.with { $0.verdict = .badFaith }))
      }
      let status = try error?.unpackGoogleRPCStatus()
      let fields = Set(status?.details.compactMap { $0.badRequest }.flatMap(\.violations).map(\.field) ?? [])
      #expect(fields == ["investigate.root_cause", "investigate.policy_clause", "investigate.legal_owner", "investigate.extent"])
      await expectError(.invalidArgument, containing: "action") {
        try await walk.olivia.client.act(.with { $0.remedyID = walk.remedy.id; $0.expectedVersion = 1 }, metadata: walk.olivia.metadata)
      }
      try await walk.toPropose()
      await expectError(.invalidArgument, containing: "currency USD (got 'EUR')") {
        try await walk.olivia.act(walk.remedy, Do.offer(compensation: [100], currency: "USD").withCurrency("EUR"))
      }
      await expectError(.notFound) {
        try await walk.olivia.act("rem_nope", version: 1, Do.note("x", internal: false))
      }
    }
  }
}

extension Action {
  /// The same offer with every compensation term in `currency`.
  func withCurrency(_ currency: String) -> Action {
    guard case .offer(var offer) = self else { return self }
    for index in offer.compensation.indices { offer.compensation[index].amount.currency = currency }
    return .offer(offer)
  }
}
