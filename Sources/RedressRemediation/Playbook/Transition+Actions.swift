import Foundation
import RedressSchemas
import RedressService

extension Transition {
  // MARK: investigate

  mutating func investigate(_ request: Redress_V1_Investigate) throws(PlaybookError) {
    try self.requireOpen("record the investigation")
    try self.requireActive(.investigate, "record the investigation")
    var violations = FieldViolations()
    Self.check(request.rootCause, "investigate.root_cause", into: &violations)
    Self.check(request.policyClause, "investigate.policy_clause", max: Self.maxShort, into: &violations)
    Self.check(request.notes, "investigate.notes", required: false, into: &violations)
    switch request.verdict {
    case .legitimate, .thirdParty, .outsidePolicy, .badFaith: break
    default: violations.add("investigate.verdict", "is required: legitimate, third party, outside policy or bad faith")
    }
    if request.verdict == .thirdParty {
      Self.check(request.thirdParty, "investigate.third_party", max: Self.maxShort, into: &violations)
    }
    if request.verdict == .badFaith {
      Self.check(request.legalOwner, "investigate.legal_owner", max: Self.maxShort, into: &violations)
    }
    if request.extent.clientsAffected < 0 { violations.add("investigate.extent.clients_affected", "must not be negative") }
    if request.extent.ordersAffected < 0 { violations.add("investigate.extent.orders_affected", "must not be negative") }
    if request.extent.hasCostEstimate {
      violations.checkMoney(request.extent.costEstimate, "investigate.extent.cost_estimate", .nonNegative)
    }
    if !request.fingerprint.isEmpty && !Self.isFingerprint(request.fingerprint) {
      violations.add("investigate.fingerprint", "must be 1-128 characters of [a-z0-9._:-]")
    }
    if !violations.isEmpty { throw .invalid(violations) }

    var investigation = Redress_V1_Investigation()
    investigation.rootCause = request.rootCause
    investigation.extent = request.extent
    investigation.verdict = request.verdict
    investigation.policyClause = request.policyClause
    investigation.thirdParty = request.thirdParty
    investigation.legalOwner = request.legalOwner
    investigation.notes = request.notes
    investigation.fingerprint = request.fingerprint
    self.remedy.investigation = investigation
    var summary = "Investigated: the claim is \(request.verdict.name) (clause \(request.policyClause))."
    if !request.fingerprint.isEmpty, self.remedy.recurrenceOf.isEmpty, let earlier = self.context.earlierLessonRemedyID {
      self.remedy.recurrenceOf = earlier
      summary += " Recurrence of \(earlier)."
    }
    self.mark(.investigate, .done)
    switch request.verdict {
    case .badFaith:
      self.remedy.status = .withLegal
      self.remedy.legalStatus = "Escalated to legal; owned by \(request.legalOwner)."
      self.skipRemaining(from: .acknowledge, reason: "Bad-faith demand: with legal (\(request.legalOwner)).")
      self.addEscalation(kind: "legal", reason: "Bad-faith demand escalated to legal; owner \(request.legalOwner).")
      summary += " Escalated to legal (\(request.legalOwner))."
    default:
      self.activate(.acknowledge)
    }
    self.record("investigate", summary, internal: true)
  }

  // MARK: acknowledge

  mutating func apologize(_ request: Redress_V1_Apologize) throws(PlaybookError) {
    try self.requireOpen("apologize")
    if self.progress(.investigate).state != .done {
      throw .rule(
        "Cannot apologize yet: investigate first (root cause, extent and a verdict) so the answer rests on facts."
      )
    }
    try self.requireActive(.acknowledge, "apologize")
    var violations = FieldViolations()
    switch request.channel {
    case .email, .phone, .chat, .inPerson, .publicSocial: break
    default: violations.add("apologize.channel", "is required: email, phone, chat or in person")
    }
    Self.check(request.message, "apologize.message", into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    if request.channel == .publicSocial {
      let raised = self.remedy.raisedOn == .publicSocial ? "The complaint was raised on a public channel, but the" : "The"
      throw .rule("\(raised) apology must go to the client privately: use email, phone, chat or in person.")
    }
    var acknowledgement = Redress_V1_Acknowledgement()
    acknowledgement.by = self.actor.name
    acknowledgement.at = .init(self.now)
    acknowledgement.channel = request.channel
    acknowledgement.message = request.message
    self.remedy.acknowledgement = acknowledgement
    self.mark(.acknowledge, .done)
    if self.remedy.investigation.verdict == .legitimate {
      self.activate(.propose)
    }
    self.record("apologize", "\(self.actor.name) apologized to the client by \(request.channel.name).")
  }

  // MARK: propose

  var openOffer: Redress_V1_Offer? {
    guard let last = self.remedy.offers.last, last.answer == .unspecified,
      last.round >= self.remedy.negotiationStartRound
    else { return nil }
    return last
  }

  mutating func offer(_ request: Redress_V1_ProposeOffer) throws(PlaybookError) {
    try self.requireOpen("propose an offer")
    let verdict = self.remedy.investigation.verdict
    if verdict == .outsidePolicy || verdict == .thirdParty {
      let instead = verdict == .outsidePolicy ? "decline it politely" : "refer it to the third party"
      throw .rule("The investigation found the claim \(verdict.name): \(instead) instead of proposing an offer.")
    }
    if self.progress(.investigate).state != .done {
      throw .rule("No offer can be made before the research: investigate first (root cause, extent, verdict), then apologize.")
    }
    if self.progress(.acknowledge).state != .done {
      throw .rule("No offer can be made before the client is acknowledged: apologize first.")
    }
    try self.requireActive(.propose, "propose an offer")
    if let open = self.openOffer {
      throw .rule("The round \(open.round) offer awaits the client's answer: record it (respond) before proposing another.")
    }
    let lastRound = self.remedy.offers.last?.round ?? 0
    let roundsSoFar = Int(max(0, lastRound - self.remedy.negotiationStartRound + 1))
    if roundsSoFar >= self.policy.maxNegotiationRounds && !self.actor.has(.approver) {
      throw .denied(
        "After \(roundsSoFar) rounds the negotiation escalated: the next offer needs an identity with the approver role."
      )
    }
    var violations = FieldViolations()
    Self.check(request.fix, "offer.fix", into: &violations)
    Self.check(request.goodwill, "offer.goodwill", required: false, max: 1000, into: &violations)
    if request.compensation.count > 20 { violations.add("offer.compensation", "at most 20 items") }
    for (index, term) in request.compensation.enumerated() {
      let field = "offer.compensation[\(index)]"
      if !Self.compensationKinds.contains(term.kind) { violations.add("\(field).kind", "is required: invoice credit, refund, expedited shipping or fee waiver") }
      violations.checkMoney(term.amount, "\(field).amount", .positive, currency: self.currency)
      Self.check(term.description_p, "\(field).description", required: false, max: 1000, into: &violations)
    }
    if !violations.isEmpty { throw .invalid(violations) }
    // Each term is at most Money.maxAmountMinor and there are at most 20: the sum cannot overflow, but it
    // is checked all the same (nothing from a request is summed unchecked).
    guard let offered = Redress_V1_Money.sum(request.compensation.lazy.map(\.amount.amountMinor)) else {
      throw .invalid("offer.compensation", "the amounts add up to more than can be represented")
    }
    let budget = self.remedy.compensation.budget
    // Both are non-negative (the budget is validated configuration, committed a checked sum): no overflow.
    let remaining = budget.amountMinor - self.remedy.compensation.committed.amountMinor
    if offered > remaining {
      throw .rule(
        "The offer's compensation (\(Redress_V1_Money(currency: budget.currency, minor: offered).text)) exceeds what is "
          + "left of the budget (\(Redress_V1_Money(currency: budget.currency, minor: remaining).text)): offer less, or escalate."
      )
    }
    var offer = Redress_V1_Offer()
    offer.round = lastRound + 1
    offer.fix = request.fix
    offer.compensation = request.compensation
    offer.goodwill = request.goodwill
    offer.proposedBy = self.actor.name
    offer.proposedAt = .init(self.now)
    self.remedy.offers.append(offer)
    let money = Redress_V1_Money(currency: budget.currency, minor: offered).text
    self.record("offer", "Offer round \(offer.round) proposed: fix, \(money) compensation\(request.goodwill.isEmpty ? "" : ", goodwill").")
  }

  mutating func respond(_ request: Redress_V1_RecordAnswer) throws(PlaybookError) {
    try self.requireOpen("record the client's answer")
    try self.requireActive(.propose, "record the client's answer")
    guard let open = self.openOffer else {
      throw .rule("No offer awaits an answer: propose one first.")
    }
    var violations = FieldViolations()
    if request.round < 0 { violations.add("respond.round", "must be the round being answered (\(open.round)), or 0 for the open one") }
    switch request.answer {
    case .accepted: break
    case .rejected: Self.check(request.reason, "respond.reason", into: &violations)
    case .countered: Self.check(request.counterTerms, "respond.counter_terms", into: &violations)
    default: violations.add("respond.answer", "is required: accepted, rejected or countered")
    }
    if request.answer != .rejected { Self.check(request.reason, "respond.reason", required: false, into: &violations) }
    if request.answer != .countered {
      Self.check(request.counterTerms, "respond.counter_terms", required: false, into: &violations)
    }
    if !violations.isEmpty { throw .invalid(violations) }
    guard request.round == 0 || request.round == open.round else {
      throw .rule("The open offer is round \(open.round), not \(request.round): answer that round.")
    }
    let index = self.remedy.offers.count - 1
    self.remedy.offers[index].answer = request.answer
    self.remedy.offers[index].answerReason = request.reason
    self.remedy.offers[index].counterTerms = request.counterTerms
    self.remedy.offers[index].answeredAt = .init(self.now)
    switch request.answer {
    case .accepted:
      self.mark(.propose, .done)
      var summary = "The client accepted the round \(open.round) offer."
      if open.compensation.allSatisfy({ $0.amount.amountMinor == 0 }) {
        self.mark(.compensate, .skipped, skipReason: "The accepted offer has no compensation.")
        self.activate(.fix)
      } else {
        self.activate(.compensate)
        if self.completeCompensationIfCovered() { summary += " Compensation already covered." }
      }
      self.record("respond", summary)
    default:
      let verb = request.answer == .rejected ? "rejected" : "countered"
      var summary = "The client \(verb) the round \(open.round) offer."
      let rounds = Int(open.round - self.remedy.negotiationStartRound + 1)
      if rounds == self.policy.maxNegotiationRounds {
        self.addEscalation(
          kind: "negotiation-rounds",
          reason: "\(rounds) offers were not accepted; the next offer needs the approver role."
        )
        summary += " Escalated after \(rounds) rounds."
      }
      self.record("respond", summary)
    }
  }

  // MARK: compensate

  static let compensationKinds: [Redress_V1_CompensationKind] = [.invoiceCredit, .refund, .expeditedShipping, .feeWaiver]

  mutating func compensate(_ request: Redress_V1_RequestCompensation) throws(PlaybookError) {
    try self.requireOpen("request compensation")
    if self.progress(.propose).state != .done && self.progress(.compensate).state == .pending {
      throw .rule("Compensation follows an accepted offer: the client must accept an offer first.")
    }
    try self.requireActive(.compensate, "request compensation")
    var violations = FieldViolations()
    if !Self.compensationKinds.contains(request.kind) {
      violations.add("compensate.kind", "is required: invoice credit, refund, expedited shipping or fee waiver")
    }
    violations.checkMoney(request.amount, "compensate.amount", .positive, currency: self.currency)
    Self.check(request.description_p, "compensate.description", required: false, max: 1000, into: &violations)
    Self.check(request.idempotencyKey, "compensate.idempotency_key", max: 128, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let ledger = self.remedy.compensation
    let (after, overflow) = ledger.committed.amountMinor.addingReportingOverflow(request.amount.amountMinor)
    if overflow || after > ledger.budget.amountMinor {
      let left = Redress_V1_Money(
        currency: ledger.budget.currency,
        minor: max(0, ledger.budget.amountMinor - ledger.committed.amountMinor)
      )
      throw .rule(
        "Requesting \(request.amount.text) would exceed the compensation budget of \(ledger.budget.text): "
          + "at most \(left.text) more can be committed. Request less, or escalate."
      )
    }
    var item = Redress_V1_LedgerItem()
    item.id = "cmp-\(ledger.items.count + 1)"
    item.kind = request.kind
    item.amount = request.amount
    item.description_p = request.description_p
    item.requestedBy = self.actor.name
    item.requestedAt = .init(self.now)
    item.idempotencyKey = request.idempotencyKey
    let needsApproval = request.amount.amountMinor > self.policy.approvalThresholdMinor
    if needsApproval {
      item.state = .awaitingApproval
    } else {
      item.state = .issued
      item.issuedAt = .init(self.now)
    }
    self.remedy.compensation.items.append(item)
    Self.totals(&self.remedy.compensation)
    var summary =
      needsApproval
      ? "Compensation \(item.id) of \(request.amount.text) requested; it awaits approval by another identity with the approver role."
      : "Compensation \(item.id) of \(request.amount.text) issued."
    if self.completeCompensationIfCovered() { summary += " Compensation complete." }
    self.record("compensate", summary)
  }

  mutating func approve(_ request: Redress_V1_ApproveCompensation) throws(PlaybookError) {
    try self.requireOpen("approve compensation")
    var itemViolations = FieldViolations()
    itemViolations.checkIdentifier(request.itemID, "approve.item_id")
    if !itemViolations.isEmpty { throw .invalid(itemViolations) }
    guard let index = self.remedy.compensation.items.firstIndex(where: { $0.id == request.itemID }) else {
      throw .notFound("Remedy \(self.remedy.id) has no compensation item '\(request.itemID)'.")
    }
    let item = self.remedy.compensation.items[index]
    guard item.state == .awaitingApproval else {
      throw .rule("Compensation item \(item.id) is already issued; there is nothing to approve.")
    }
    guard item.requestedBy != self.actor.name else {
      throw .rule(
        "Compensation item \(item.id) was requested by '\(item.requestedBy)': it needs approval by a different identity with the approver role."
      )
    }
    self.remedy.compensation.items[index].state = .issued
    self.remedy.compensation.items[index].approvedBy = self.actor.name
    self.remedy.compensation.items[index].issuedAt = .init(self.now)
    Self.totals(&self.remedy.compensation)
    var summary = "Compensation \(item.id) of \(item.amount.text) approved by \(self.actor.name) and issued."
    if self.completeCompensationIfCovered() { summary += " Compensation complete." }
    self.record("approve", summary)
  }

  // MARK: fix

  mutating func fix(_ request: Redress_V1_FixAction) throws(PlaybookError) {
    try self.requireOpen("record fix progress")
    if self.progress(.fix).state == .pending, self.progress(.compensate).state == .active {
      let awaiting = self.remedy.compensation.items.filter { $0.state == .awaitingApproval }.map(\.id)
      let why =
        awaiting.isEmpty
        ? "issue the compensation the client accepted first"
        : "compensation \(awaiting.joined(separator: ", ")) must be approved first"
      throw .rule("Cannot work on the fix yet: \(why).")
    }
    try self.requireActive(.fix, "record fix progress")
    switch request.step {
    case .assign(let assign):
      var violations = FieldViolations()
      Self.check(assign.owner, "fix.assign.owner", max: Self.maxShort, into: &violations)
      Self.check(assign.description_p, "fix.assign.description", required: false, into: &violations)
      if !assign.hasDueAt {
        violations.add("fix.assign.due_at", "is required")
      } else if assign.dueAt.date <= self.now {
        violations.add("fix.assign.due_at", "must be in the future (now is \(self.now.iso8601))")
      }
      if !violations.isEmpty { throw .invalid(violations) }
      if self.remedy.fix.hasDoneAt { throw .rule("The fix is already done; it cannot be reassigned.") }
      self.remedy.fix.owner = assign.owner
      self.remedy.fix.dueAt = assign.dueAt
      self.remedy.fix.description_p = assign.description_p
      let index = Playbook.index(.fix)
      self.remedy.stages[index].dueAt = assign.dueAt
      self.remedy.stages[index].overdue = false
      self.remedy.stages[index].actor = self.actor.name
      self.record("fix", "Fix assigned to \(assign.owner), due \(assign.dueAt.date.iso8601).")
    case .done(let done):
      try Self.notes(done.notes, "fix.done.notes")
      if self.remedy.fix.owner.isEmpty { throw .rule("Assign the fix to a named owner with a due date first.") }
      if self.remedy.fix.hasDoneAt { throw .rule("The fix is already done; verify it next.") }
      self.remedy.fix.doneAt = .init(self.now)
      self.notes(done.notes)
      self.record("fix", "Fix done by \(self.remedy.fix.owner).")
    case .verified(let verified):
      try Self.notes(verified.notes, "fix.verified.notes")
      if !self.remedy.fix.hasDoneAt { throw .rule("The fix must be done before it is verified.") }
      if self.remedy.fix.hasVerifiedAt { throw .rule("The fix is already verified; the client confirms it next.") }
      self.remedy.fix.verifiedAt = .init(self.now)
      self.remedy.fix.verifiedBy = self.actor.name
      self.notes(verified.notes)
      self.record("fix", "Fix verified by \(self.actor.name).")
    case .clientConfirmed(let confirmed):
      try Self.notes(confirmed.notes, "fix.client_confirmed.notes")
      if !self.remedy.fix.hasVerifiedAt { throw .rule("The fix must be done and verified before the client confirms it.") }
      self.remedy.fix.clientConfirmedAt = .init(self.now)
      self.notes(confirmed.notes)
      self.mark(.fix, .done)
      self.activate(.goodwill)
      let scheduled = self.now + self.policy.followUpDelay.timeInterval
      self.remedy.followUp.scheduledAt = .init(scheduled)
      self.record("fix", "The client confirmed the fix; follow-up call scheduled for \(scheduled.iso8601).")
    case nil:
      throw .invalid("fix.step", "is required: assign, done, verified or client_confirmed")
    }
  }

  static func notes(_ text: String, _ field: String) throws(PlaybookError) {
    var violations = FieldViolations()
    Self.check(text, field, required: false, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
  }

  mutating func notes(_ text: String) {
    guard !text.isEmpty else { return }
    let index = Playbook.index(self.remedy.currentStage)
    let existing = self.remedy.stages[index].notes
    self.remedy.stages[index].notes = existing.isEmpty ? text : existing + "\n" + text
  }

  // MARK: goodwill

  mutating func goodwill(_ request: Redress_V1_Goodwill) throws(PlaybookError) {
    try self.requireOpen("record goodwill")
    try self.requireActive(.goodwill, "record goodwill")
    switch request.kind {
    case .gesture(let gesture):
      var violations = FieldViolations()
      Self.check(gesture.description_p, "goodwill.gesture.description", max: 1000, into: &violations)
      violations.checkMoney(gesture.value, "goodwill.gesture.value", .nonNegative, currency: self.currency)
      Self.check(gesture.idempotencyKey, "goodwill.gesture.idempotency_key", max: 128, into: &violations)
      if !violations.isEmpty { throw .invalid(violations) }
      let ledger = self.remedy.goodwill
      let (after, overflow) = ledger.committed.amountMinor.addingReportingOverflow(gesture.value.amountMinor)
      if overflow || after > ledger.budget.amountMinor {
        throw .rule(
          "A goodwill gesture worth \(gesture.value.text) exceeds the goodwill budget of \(ledger.budget.text): choose a smaller gesture, or skip goodwill with a reason."
        )
      }
      var item = Redress_V1_LedgerItem()
      item.id = "gw-\(ledger.items.count + 1)"
      item.amount = gesture.value
      item.description_p = gesture.description_p
      item.state = .issued
      item.requestedBy = self.actor.name
      item.requestedAt = .init(self.now)
      item.issuedAt = .init(self.now)
      item.idempotencyKey = gesture.idempotencyKey
      self.remedy.goodwill.items.append(item)
      Self.totals(&self.remedy.goodwill)
      self.mark(.goodwill, .done)
      self.activate(.followUp)
      self.record("goodwill", "Goodwill: \(gesture.description_p) (\(gesture.value.text)).")
    case .skipReason(let reason):
      if reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        throw .invalid("goodwill.skip_reason", "is required to skip goodwill")
      }
      try Self.notes(reason, "goodwill.skip_reason")
      self.mark(.goodwill, .skipped, skipReason: reason)
      self.activate(.followUp)
      self.record("goodwill", "Goodwill skipped: \(reason)")
    case nil:
      throw .invalid("goodwill.kind", "is required: a gesture, or a skip_reason")
    }
  }

  // MARK: follow up

  mutating func followUp(_ request: Redress_V1_RecordFollowUp) throws(PlaybookError) {
    try self.requireOpen("record the follow-up")
    try self.requireActive(.followUp, "record the follow-up")
    var violations = FieldViolations()
    switch request.medium {
    case .call, .meeting: break
    case .message:
      if request.mediumReason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        violations.add("follow_up.medium_reason", "is required for a message: follow up by call or meeting, or say why not")
      }
    default: violations.add("follow_up.medium", "is required: call or meeting (message only with a reason)")
    }
    switch request.outcome {
    case .satisfied, .unsatisfied, .unreachable: break
    default: violations.add("follow_up.outcome", "is required: satisfied, unsatisfied or unreachable")
    }
    Self.check(request.notes, "follow_up.notes", required: false, into: &violations)
    Self.check(request.mediumReason, "follow_up.medium_reason", required: false, max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    if self.remedy.followUp.hasScheduledAt, self.now < self.remedy.followUp.scheduledAt.date {
      throw .rule(
        "The follow-up call is scheduled for \(self.remedy.followUp.scheduledAt.date.iso8601), some days after the fix: record it on or after then."
      )
    }
    var attempt = Redress_V1_FollowUpAttempt()
    attempt.at = .init(self.now)
    attempt.by = self.actor.name
    attempt.medium = request.medium
    attempt.mediumReason = request.mediumReason
    attempt.outcome = request.outcome
    attempt.notes = request.notes
    self.remedy.followUp.attempts.append(attempt)
    switch request.outcome {
    case .satisfied:
      self.mark(.followUp, .done)
      self.activate(.learn)
      self.record("follow-up", "Follow-up: the client is satisfied.")
    case .unsatisfied:
      self.reopen()
      self.record(
        "follow-up",
        "Follow-up: the client is not satisfied; the remedy reopens at propose (round \(self.remedy.negotiationStartRound))."
      )
    default:
      let next = self.now + self.policy.followUpRetryDelay.timeInterval
      self.remedy.followUp.scheduledAt = .init(next)
      self.record("follow-up", "Follow-up: the client was unreachable; rescheduled for \(next.iso8601).")
    }
  }

  /// An unsatisfied follow-up: back to propose, with a new negotiation and a new fix; history stays.
  mutating func reopen() {
    self.remedy.reopenCount += 1
    self.remedy.negotiationStartRound = (self.remedy.offers.last?.round ?? 0) + 1
    for stage in [Redress_V1_Stage.propose, .compensate, .fix, .goodwill, .followUp] {
      let index = Playbook.index(stage)
      var progress = Redress_V1_StageProgress()
      progress.stage = stage
      progress.state = .pending
      progress.dueAt = self.remedy.resolveBy
      self.remedy.stages[index] = progress
    }
    self.remedy.fix = Redress_V1_FixProgress()
    self.remedy.followUp.clearScheduledAt()
    self.activate(.propose)
  }

  // MARK: learn

  mutating func learn(_ request: Redress_V1_RecordLesson) throws(PlaybookError) {
    try self.requireOpen("record the lesson")
    try self.requireActive(.learn, "record the lesson")
    var violations = FieldViolations()
    Self.check(request.lesson, "learn.lesson", into: &violations)
    Self.check(request.preventionAction, "learn.prevention_action", into: &violations)
    Self.check(request.preventionOwner, "learn.prevention_owner", max: Self.maxShort, into: &violations)
    if !Self.isFingerprint(request.fingerprint) {
      violations.add("learn.fingerprint", "is required: 1-128 characters of [a-z0-9._:-]")
    }
    if !violations.isEmpty { throw .invalid(violations) }
    var lesson = Redress_V1_Lesson()
    lesson.lesson = request.lesson
    lesson.preventionAction = request.preventionAction
    lesson.preventionOwner = request.preventionOwner
    lesson.fingerprint = request.fingerprint
    lesson.recordedBy = self.actor.name
    lesson.recordedAt = .init(self.now)
    self.remedy.lesson = lesson
    var summary = "Lesson recorded; the remedy is resolved."
    if self.remedy.recurrenceOf.isEmpty, let earlier = self.context.earlierLessonRemedyID {
      self.remedy.recurrenceOf = earlier
      summary += " It is a recurrence of \(earlier)."
    }
    self.mark(.learn, .done)
    self.remedy.status = .resolved
    self.record("learn", summary)
  }

  // MARK: escalate, decline, refer, legal

  mutating func escalate(_ request: Redress_V1_Escalate) throws(PlaybookError) {
    guard self.remedy.status == .open || (!self.remedy.hasClosedAt && [.referred, .withLegal].contains(self.remedy.status)) else {
      throw .rule("Cannot escalate: the remedy is \(self.remedy.status.name) and closed.")
    }
    var violations = FieldViolations()
    Self.check(request.reason, "escalate.reason", max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    self.addEscalation(kind: "manual", reason: request.reason)
    self.record("escalate", "Escalated by \(self.actor.name): \(request.reason)", internal: true)
  }

  mutating func decline(_ request: Redress_V1_Decline) throws(PlaybookError) {
    try self.requireOpen("decline")
    guard self.progress(.investigate).state == .done else {
      throw .rule("Cannot decline yet: investigate first; only a claim found outside policy can be declined.")
    }
    guard self.remedy.investigation.verdict == .outsidePolicy else {
      throw .rule(
        "Only a claim the investigation found outside policy can be declined; this one is \(self.remedy.investigation.verdict.name)."
      )
    }
    guard self.progress(.acknowledge).state == .done else {
      throw .rule("Acknowledge the client (apologize) before declining: a declined client is still acknowledged.")
    }
    var violations = FieldViolations()
    Self.check(request.reason, "decline.reason", into: &violations)
    Self.check(request.policyClause, "decline.policy_clause", required: false, max: Self.maxShort, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let clause = request.policyClause.isEmpty ? self.remedy.investigation.policyClause : request.policyClause
    self.remedy.status = .declined
    self.skipRemaining(from: .propose, reason: "Declined: \(request.reason)")
    self.record("decline", "Declined politely under clause \(clause): \(request.reason)")
  }

  mutating func refer(_ request: Redress_V1_Refer) throws(PlaybookError) {
    var violations = FieldViolations()
    Self.check(request.thirdParty, "refer.third_party", required: false, max: Self.maxShort, into: &violations)
    Self.check(request.notes, "refer.notes", required: self.remedy.status == .referred, into: &violations)
    if self.remedy.status == .referred {
      if !violations.isEmpty { throw .invalid(violations) }
      if self.remedy.hasClosedAt { throw .rule("The referral is closed; it takes no further updates.") }
      self.remedy.referralStatus = request.notes
      if request.closed { self.remedy.closedAt = .init(self.now) }
      self.record("refer", request.closed ? "Referral closed: \(request.notes)" : "Referral update: \(request.notes)")
      return
    }
    try self.requireOpen("refer")
    guard self.progress(.investigate).state == .done, self.remedy.investigation.verdict == .thirdParty else {
      throw .rule("Only a claim the investigation found caused by a third party can be referred: investigate first.")
    }
    guard self.progress(.acknowledge).state == .done else {
      throw .rule("Acknowledge the client (apologize) before referring: a referred client is still acknowledged.")
    }
    if !violations.isEmpty { throw .invalid(violations) }
    let party = request.thirdParty.isEmpty ? self.remedy.investigation.thirdParty : request.thirdParty
    self.remedy.status = .referred
    self.remedy.referralStatus = "Referred to \(party)." + (request.notes.isEmpty ? "" : " \(request.notes)")
    if request.closed { self.remedy.closedAt = .init(self.now) }
    self.skipRemaining(from: .propose, reason: "Referred to \(party).")
    self.record("refer", "Referred to \(party).")
  }

  mutating func legal(_ request: Redress_V1_UpdateLegal) throws(PlaybookError) {
    guard self.remedy.status == .withLegal else {
      throw .rule("Only a remedy with legal takes legal updates; this one is \(self.remedy.status.name).")
    }
    if self.remedy.hasClosedAt { throw .rule("The legal matter is closed; it takes no further updates.") }
    var violations = FieldViolations()
    Self.check(request.status, "legal.status", max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    self.remedy.legalStatus = request.status
    if request.closed { self.remedy.closedAt = .init(self.now) }
    self.record("legal", request.closed ? "Legal matter closed." : "Legal status updated.", internal: true)
  }

  // MARK: skip, note

  static let skippable: [Redress_V1_Stage] = [.compensate, .fix, .goodwill, .followUp]

  mutating func skip(_ request: Redress_V1_SkipStage) throws(PlaybookError) {
    try self.requireOpen("skip a stage")
    var violations = FieldViolations()
    if request.stage == .unspecified || !Redress_V1_Stage.ordered.contains(request.stage) {
      violations.add("skip.stage", "is required")
    }
    Self.check(request.reason, "skip.reason", max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    guard Self.skippable.contains(request.stage) else {
      throw .rule(
        "The \(request.stage.name) stage cannot be skipped; only compensate, fix, goodwill and follow-up can, with a reason."
      )
    }
    try self.requireActive(request.stage, "skip \(request.stage.name)")
    if request.stage == .compensate,
      let waiting = self.remedy.compensation.items.first(where: { $0.state == .awaitingApproval })
    {
      throw .rule("Compensation \(waiting.id) awaits approval: an approver must approve it before compensate can be skipped.")
    }
    self.mark(request.stage, .skipped, skipReason: request.reason)
    switch request.stage {
    case .compensate:
      self.activate(.fix)
    case .fix:
      self.activate(.goodwill)
      self.remedy.followUp.scheduledAt = .init(self.now + self.policy.followUpDelay.timeInterval)
    case .goodwill:
      self.activate(.followUp)
    default:
      self.activate(.learn)
    }
    self.record("skip", "Skipped \(request.stage.name): \(request.reason)")
  }

  mutating func note(_ request: Redress_V1_AddNote) throws(PlaybookError) {
    var violations = FieldViolations()
    Self.check(request.text, "note.text", into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    self.record("note", request.text, internal: request.internal)
  }
}
