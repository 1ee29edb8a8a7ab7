import Foundation
import RedressSchemas
import RedressService

extension Transition {
  // MARK: investigate

  mutating func investigate(_ request: Redress_V1_Investigate, sharedFrom source: String = "") throws(PlaybookError) {
    try self.requireOpen("record the investigation")
    try self.requireActive(.investigate, "record the investigation")
    try self.validate(request, "investigate")
    var summary = self.setInvestigation(request, reason: "", sharedFrom: source)
    self.mark(.investigate, .done)
    if !source.isEmpty {
      summary = "Investigated with the group (shared from remedy \(source)): " + summary
    } else if request.forGroup {
      summary += " Shared with the group."
    }
    summary += self.route(after: request)
    self.record("investigate", summary, internal: true)
  }

  /// The investigation's field rules, for `investigate` and `reinvestigate` (`prefix` names the message).
  func validate(_ request: Redress_V1_Investigate, _ prefix: String) throws(PlaybookError) {
    var violations = FieldViolations()
    Self.check(request.rootCause, "\(prefix).root_cause", into: &violations)
    Self.check(request.policyClause, "\(prefix).policy_clause", max: Self.maxShort, into: &violations)
    Self.check(request.notes, "\(prefix).notes", required: false, into: &violations)
    switch request.verdict {
    case .legitimate, .thirdParty, .outsidePolicy, .badFaith: break
    default: violations.add("\(prefix).verdict", "is required: legitimate, third party, outside policy or bad faith")
    }
    if request.verdict == .thirdParty {
      Self.check(request.thirdParty, "\(prefix).third_party", max: Self.maxShort, into: &violations)
    }
    if request.verdict == .badFaith {
      Self.check(request.legalOwner, "\(prefix).legal_owner", max: Self.maxShort, into: &violations)
      Self.checkPerson(request.legalOwner, "\(prefix).legal_owner", people: self.policy.people, into: &violations)
    }
    // The extent is part of the research (docs/REMEDIATION.md rule 2): how many clients (at least the one who
    // complained), how many orders (0 when none are involved), and what it costs us.
    if !request.hasExtent {
      violations.add("\(prefix).extent", "is required: clients affected (at least 1), orders affected, cost estimate")
    } else {
      if request.extent.clientsAffected < 1 {
        violations.add("\(prefix).extent.clients_affected", "is required: at least 1 (the client who complained)")
      }
      if request.extent.ordersAffected < 0 {
        violations.add("\(prefix).extent.orders_affected", "must not be negative (0 when no order is involved)")
      }
      if request.extent.hasCostEstimate {
        violations.checkMoney(request.extent.costEstimate, "\(prefix).extent.cost_estimate", .nonNegative)
      } else {
        violations.add("\(prefix).extent.cost_estimate", "is required: what the mistake costs (0 if nothing), e.g. 300.00 USD")
      }
    }
    if !request.fingerprint.isEmpty && !Self.isFingerprint(request.fingerprint) {
      violations.add("\(prefix).fingerprint", "must be 1-128 characters of [a-z0-9._:-]")
    }
    if !violations.isEmpty { throw .invalid(violations) }
  }

  /// Stores `request` as the remedy's investigation; the summary's first sentences.
  mutating func setInvestigation(_ request: Redress_V1_Investigate, reason: String, sharedFrom source: String) -> String {
    var investigation = Redress_V1_Investigation()
    investigation.rootCause = request.rootCause
    investigation.extent = request.extent
    investigation.verdict = request.verdict
    investigation.policyClause = request.policyClause
    investigation.thirdParty = request.thirdParty
    investigation.legalOwner = request.legalOwner
    investigation.notes = request.notes
    investigation.fingerprint = request.fingerprint
    investigation.investigatedBy = self.actor.name
    investigation.investigatedAt = .init(self.now)
    investigation.reason = reason
    investigation.sharedFromRemedyID = source
    self.remedy.investigation = investigation
    var summary = "The claim is \(request.verdict.name) (clause \(request.policyClause))."
    if !request.fingerprint.isEmpty, self.remedy.recurrenceOf.isEmpty, let earlier = self.context.earlierLessonRemedyID {
      self.remedy.recurrenceOf = earlier
      summary += " Recurrence of \(earlier)."
    }
    return summary
  }

  /// After an investigation: bad faith goes to legal at once; otherwise the client is answered next (the
  /// apology, or for a claim outside policy a polite decline). Returns what to add to the summary.
  mutating func route(after request: Redress_V1_Investigate) -> String {
    switch request.verdict {
    case .badFaith:
      self.remedy.status = .withLegal
      let opening = "Escalated to legal; owned by \(request.legalOwner)."
      self.remedy.legalStatus = opening
      self.remedy.legalHistory.append(self.caseNote(opening))
      self.skipRemaining(from: .acknowledge, reason: "Bad-faith demand: with legal (\(request.legalOwner)).")
      self.addEscalation(kind: "legal", reason: "Bad-faith demand escalated to legal; owner \(request.legalOwner).")
      return " Escalated to legal (\(request.legalOwner))."
    default:
      if self.progress(.acknowledge).state == .done {
        // Re-investigated after the apology: the next step follows from the new verdict.
        if request.verdict == .legitimate { self.activate(.propose) } else { self.remedy.currentStage = .acknowledge }
      } else {
        self.activate(.acknowledge)
      }
      return ""
    }
  }

  func caseNote(_ text: String, closed: Bool = false) -> Redress_V1_CaseNote {
    .with {
      $0.at = .init(self.now)
      $0.by = self.actor.name
      $0.text = text
      $0.closed = closed
    }
  }

  // MARK: reinvestigate

  mutating func reinvestigate(_ request: Redress_V1_Reinvestigate) throws(PlaybookError) {
    switch self.remedy.status {
    case .open, .declined:
      break
    case .referred, .withLegal:
      if self.remedy.hasClosedAt {
        throw .rule("Cannot re-investigate: the \(self.remedy.status == .referred ? "referral" : "legal matter") is closed.")
      }
    default:
      throw .rule("Cannot re-investigate: the remedy is \(self.remedy.status.name).")
    }
    guard self.progress(.investigate).state == .done else {
      throw .rule("Nothing to re-investigate yet: record the first investigation (investigate).")
    }
    if let accepted = self.remedy.offers.first(where: { $0.answer == .accepted }) {
      throw .rule(
        "Cannot re-investigate: the client accepted the round \(accepted.round) offer, so the verdict can no longer change."
      )
    }
    if let open = self.openOffer {
      throw .rule("The round \(open.round) offer awaits the client's answer: record it (respond) before re-investigating.")
    }
    var violations = FieldViolations()
    Self.check(request.reason, "reinvestigate.reason", max: 1000, into: &violations)
    if !request.hasInvestigation { violations.add("reinvestigate.investigation", "is required: the new findings") }
    if !violations.isEmpty { throw .invalid(violations) }
    try self.validate(request.investigation, "reinvestigate.investigation")
    let before = self.remedy.investigation.verdict
    self.remedy.previousInvestigations.append(self.remedy.investigation)
    var summary = "Re-investigated (\(request.reason)): "
    summary += self.setInvestigation(request.investigation, reason: request.reason, sharedFrom: "")
    summary += before == request.investigation.verdict ? " The verdict stands." : " The verdict was \(before.name)."
    // Back on the playbook's route from the investigation: what the old verdict ended or began is undone;
    // history (offers not accepted, legal and referral notes, escalations) is kept.
    self.remedy.status = .open
    self.remedy.clearClosedAt()
    for stage in [Redress_V1_Stage.propose, .compensate, .fix, .goodwill, .followUp, .learn] {
      let index = Playbook.index(stage)
      var progress = Redress_V1_StageProgress()
      progress.stage = stage
      progress.state = .pending
      progress.dueAt = self.remedy.resolveBy
      self.remedy.stages[index] = progress
    }
    let acknowledge = Playbook.index(.acknowledge)
    if self.remedy.hasAcknowledgement {
      self.remedy.stages[acknowledge].state = .done
      self.remedy.stages[acknowledge].skipReason = ""
    } else {
      self.remedy.stages[acknowledge].state = .pending
      self.remedy.stages[acknowledge].skipReason = ""
    }
    summary += self.route(after: request.investigation)
    self.record("reinvestigate", summary, internal: true)
  }

  // MARK: receipt

  static let privateChannels: [Redress_V1_Channel] = [.email, .phone, .chat, .inPerson]

  mutating func receipt(_ request: Redress_V1_AcknowledgeReceipt) throws(PlaybookError) {
    try self.requireOpen("acknowledge receipt")
    if self.remedy.hasReceipt {
      throw .rule(
        "The client's report was already acknowledged by \(self.remedy.receipt.by) at \(self.remedy.receipt.at.date.iso8601); "
          + "next: \(Playbook.nextAction(for: self.remedy))"
      )
    }
    var violations = FieldViolations()
    let isPublic = self.remedy.raisedOn == .publicSocial
    if request.channel == .unspecified {
      violations.add("receipt.channel", "is required: email, phone, chat, in person, or the public post it was raised on")
    } else if !(Self.privateChannels + [.publicSocial]).contains(request.channel) {
      violations.add("receipt.channel", "must be email, phone, chat, in person, or the public post it was raised on")
    }
    Self.check(request.message, "receipt.message", max: 1000, into: &violations)
    if request.privateChannel != .unspecified, !Self.privateChannels.contains(request.privateChannel) {
      violations.add("receipt.private_channel", "must be a private channel: email, phone, chat or in person")
    } else if isPublic, request.privateChannel == .unspecified {
      violations.add(
        "receipt.private_channel",
        "is required: the complaint was raised publicly, so offer a private channel (email, phone, chat or in person) to continue on"
      )
    }
    if !violations.isEmpty { throw .invalid(violations) }
    if request.channel == .publicSocial, !isPublic {
      throw .rule("The complaint was not raised publicly: answer the client privately (email, phone, chat or in person).")
    }
    var receipt = Redress_V1_Receipt()
    receipt.by = self.actor.name
    receipt.at = .init(self.now)
    receipt.channel = request.channel
    receipt.message = request.message
    receipt.privateChannel = request.privateChannel
    self.remedy.receipt = receipt
    // The client is acknowledged: the acknowledgement clock stops (and a missed one no longer shows as open).
    for stage in [Redress_V1_Stage.investigate, .acknowledge] {
      self.remedy.stages[Playbook.index(stage)].overdue = false
    }
    var summary = "\(self.actor.name) acknowledged the client's report by \(request.channel.name)"
    if request.privateChannel != .unspecified { summary += " and offered to continue by \(request.privateChannel.name)" }
    self.record("receipt", summary + ".")
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
    case .unspecified: violations.add("apologize.channel", "is required: email, phone, chat or in person")
    case .legalNotice:
      violations.add(
        "apologize.channel",
        "cannot be legal notice: that is how a complaint arrives, not how we apologize; use email, phone, chat or in person"
      )
    default: violations.add("apologize.channel", "must be email, phone, chat or in person (got \(request.channel.rawValue))")
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
    Self.check(request.offTermsReason, "compensate.off_terms_reason", required: false, max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let ledger = self.remedy.compensation
    // What is paid must match what was agreed: the accepted offers' terms of this kind, less what is already
    // committed of it. Anything else needs a reason and an approver.
    let agreed = Redress_V1_Money.sum(
      self.remedy.offers.lazy.filter { $0.answer == .accepted }.flatMap(\.compensation).filter { $0.kind == request.kind }
        .map(\.amount.amountMinor)
    ) ?? .max
    let committedOfKind = Redress_V1_Money.sum(
      ledger.items.lazy.filter { $0.kind == request.kind && ($0.state == .issued || $0.state == .awaitingApproval) }
        .map(\.amount.amountMinor)
    ) ?? .max
    let leftOfKind = max(0, agreed - min(agreed, committedOfKind))
    let offTerms = request.amount.amountMinor > leftOfKind
    let offTermsReason = request.offTermsReason.trimmingCharacters(in: .whitespacesAndNewlines)
    if offTerms && offTermsReason.isEmpty {
      let kind = Self.kindName(request.kind)
      let left = Redress_V1_Money(currency: ledger.budget.currency, minor: leftOfKind)
      throw .rule(
        agreed == 0
          ? "The accepted offer has no \(kind): pay what was agreed, or give off_terms_reason (an approver must then approve it)."
          : "The accepted offer leaves \(left.text) of \(kind) to pay, less than \(request.amount.text): pay what was agreed, "
            + "or give off_terms_reason (an approver must then approve it)."
      )
    }
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
    let limits = self.policy.limits(for: ledger.budget.currency)
    let (groupAfter, groupOverflow) = self.context.groupCommittedMinor.addingReportingOverflow(after)
    if groupOverflow || groupAfter > limits.groupCompensationBudgetMinor {
      let groupBudget = Redress_V1_Money(currency: ledger.budget.currency, minor: limits.groupCompensationBudgetMinor)
      let committed = Redress_V1_Money(currency: ledger.budget.currency, minor: self.context.groupCommittedMinor)
      throw .rule(
        "Requesting \(request.amount.text) would exceed the group's compensation budget of \(groupBudget.text) "
          + "(the other remedies of group \(self.remedy.groupID) have committed \(committed.text)): request less, or escalate."
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
    if offTerms { item.offTermsReason = offTermsReason }
    let needsApproval = offTerms || request.amount.amountMinor > limits.approvalThresholdMinor
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
      ? "Compensation \(item.id) of \(request.amount.text) requested\(offTerms ? " off the agreed terms (\(offTermsReason))" : ""); it awaits approval by another identity with the approver role."
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
      throw .rule("Compensation item \(item.id) is \(Self.stateName(item.state)); there is nothing to approve.")
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

  static func kindName(_ kind: Redress_V1_CompensationKind) -> String {
    switch kind {
    case .invoiceCredit: "invoice credit"
    case .refund: "refund"
    case .expeditedShipping: "expedited shipping"
    case .feeWaiver: "fee waiver"
    default: "compensation of that kind"
    }
  }

  static func stateName(_ state: Redress_V1_LedgerItemState) -> String {
    switch state {
    case .issued: "already issued"
    case .rejected: "rejected"
    case .withdrawn: "withdrawn"
    case .awaitingApproval: "awaiting approval"
    default: "in no known state"
    }
  }

  /// The compensation item `itemID` that awaits approval, for reject and withdraw.
  func itemAwaitingApproval(_ itemID: String, _ field: String, _ doing: String) throws(PlaybookError) -> Int {
    var violations = FieldViolations()
    violations.checkIdentifier(itemID, field)
    if !violations.isEmpty { throw .invalid(violations) }
    guard let index = self.remedy.compensation.items.firstIndex(where: { $0.id == itemID }) else {
      throw .notFound("Remedy \(self.remedy.id) has no compensation item '\(itemID)'.")
    }
    let item = self.remedy.compensation.items[index]
    guard item.state == .awaitingApproval else {
      throw .rule("Compensation item \(item.id) is \(Self.stateName(item.state)): only an item awaiting approval can be \(doing).")
    }
    return index
  }

  /// Ends an item awaiting approval without paying it: it no longer counts against the budget.
  mutating func decide(_ index: Int, _ state: Redress_V1_LedgerItemState, reason: String) -> String {
    self.remedy.compensation.items[index].state = state
    self.remedy.compensation.items[index].decidedBy = self.actor.name
    self.remedy.compensation.items[index].decisionReason = reason
    self.remedy.compensation.items[index].decidedAt = .init(self.now)
    Self.totals(&self.remedy.compensation)
    return self.completeCompensationIfCovered() ? " Compensation complete." : ""
  }

  mutating func reject(_ request: Redress_V1_RejectCompensation) throws(PlaybookError) {
    try self.requireOpen("reject compensation")
    var violations = FieldViolations()
    Self.check(request.reason, "reject.reason", max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let index = try self.itemAwaitingApproval(request.itemID, "reject.item_id", "rejected")
    let item = self.remedy.compensation.items[index]
    let tail = self.decide(index, .rejected, reason: request.reason)
    self.record(
      "reject",
      "Compensation \(item.id) of \(item.amount.text) rejected by \(self.actor.name): \(request.reason) The budget it held is free.\(tail)",
      internal: true
    )
  }

  mutating func withdraw(_ request: Redress_V1_WithdrawCompensation) throws(PlaybookError) {
    try self.requireOpen("withdraw compensation")
    var violations = FieldViolations()
    Self.check(request.reason, "withdraw.reason", max: 1000, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let index = try self.itemAwaitingApproval(request.itemID, "withdraw.item_id", "withdrawn")
    let item = self.remedy.compensation.items[index]
    guard item.requestedBy == self.actor.name else {
      throw .denied(
        "Compensation item \(item.id) was requested by '\(item.requestedBy)': only its requester may withdraw it (an approver may reject it)."
      )
    }
    let tail = self.decide(index, .withdrawn, reason: request.reason)
    self.record(
      "withdraw",
      "Compensation \(item.id) of \(item.amount.text) withdrawn by \(self.actor.name): \(request.reason) The budget it held is free.\(tail)",
      internal: true
    )
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
      Self.checkPerson(assign.owner, "fix.assign.owner", people: self.policy.people, into: &violations)
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
      self.remedy.fix.deadlineFired = false
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
    Self.checkPerson(request.preventionOwner, "learn.prevention_owner", people: self.policy.people, into: &violations)
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
    // A claim outside policy is owed no apology, but the client is still answered: the receipt (or an
    // apology, if one was made) must come first.
    guard self.remedy.hasReceipt || self.progress(.acknowledge).state == .done else {
      throw .rule(
        "Acknowledge the client's report first (receipt): a declined client is still answered; no apology is needed for a claim outside policy."
      )
    }
    var violations = FieldViolations()
    Self.check(request.reason, "decline.reason", into: &violations)
    Self.check(request.policyClause, "decline.policy_clause", required: false, max: Self.maxShort, into: &violations)
    if !violations.isEmpty { throw .invalid(violations) }
    let clause = request.policyClause.isEmpty ? self.remedy.investigation.policyClause : request.policyClause
    self.remedy.status = .declined
    if self.progress(.acknowledge).state == .active {
      self.mark(.acknowledge, .skipped, skipReason: "No apology: the claim is outside policy (the receipt was acknowledged).")
    }
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
      self.remedy.referralHistory.append(self.caseNote(request.notes, closed: request.closed))
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
    self.remedy.referralHistory.append(self.caseNote(self.remedy.referralStatus, closed: request.closed))
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
    self.remedy.legalHistory.append(self.caseNote(request.status, closed: request.closed))
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
