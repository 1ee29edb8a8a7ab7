public import RedressSchemas

/// What a client-facing tool sees of a remedy, built from an allow-list: a field is shown only if it is
/// copied here. Nothing names a staff member, the verdict, a third party, legal, budgets, approvers or
/// internal notes, and every text shown is either the client's own words, what was said to the client
/// (offers, the apology, a decline, visible notes) or a fixed sentence (issue 11, finding 5).
extension Redress_V1_Remedy {
  public var clientView: Redress_V1_Remedy {
    var view = Redress_V1_Remedy()
    view.id = self.id
    view.incidentID = self.incidentID
    view.tenant = self.tenant
    view.version = self.version
    // A bad-faith demand routed to legal is, to the client, a remedy still being handled.
    view.status = self.status == .withLegal ? .open : self.status
    view.currentStage = self.currentStage
    view.nextAction = Self.clientNextAction(self)
    view.customer = .with {
      $0.id = self.customer.id
      $0.name = self.customer.name
    }
    view.title = self.title
    view.raisedOn = self.raisedOn
    view.stages = self.stages.map { stage in
      .with {
        $0.stage = stage.stage
        // A skipped stage reads as done: why it was skipped is internal.
        $0.state = stage.state == .skipped ? .done : stage.state
        $0.updatedAt = stage.updatedAt
        if stage.hasDueAt { $0.dueAt = stage.dueAt }
      }
    }
    if self.hasReceipt {
      view.receipt = .with {
        $0.at = self.receipt.at
        $0.channel = self.receipt.channel
        $0.message = self.receipt.message
        $0.privateChannel = self.receipt.privateChannel
      }
    }
    if self.hasAcknowledgement {
      view.acknowledgement = .with {
        $0.at = self.acknowledgement.at
        $0.channel = self.acknowledgement.channel
        $0.message = self.acknowledgement.message
      }
    }
    view.offers = self.offers.map { offer in
      .with {
        $0.round = offer.round
        $0.fix = offer.fix
        $0.compensation = offer.compensation
        $0.goodwill = offer.goodwill
        $0.proposedAt = offer.proposedAt
        $0.answer = offer.answer
        $0.answerReason = offer.answerReason
        $0.counterTerms = offer.counterTerms
        if offer.hasAnsweredAt { $0.answeredAt = offer.answeredAt }
      }
    }
    view.compensation = Self.clientLedger(self.compensation)
    view.goodwill = Self.clientLedger(self.goodwill)
    view.fix = .with {
      $0.description_p = self.fix.description_p
      if self.fix.hasDueAt { $0.dueAt = self.fix.dueAt }
      if self.fix.hasDoneAt { $0.doneAt = self.fix.doneAt }
      if self.fix.hasClientConfirmedAt { $0.clientConfirmedAt = self.fix.clientConfirmedAt }
    }
    if self.followUp.hasScheduledAt {
      view.followUp = .with { $0.scheduledAt = self.followUp.scheduledAt }
    }
    view.timeline = self.timeline.compactMap(\.clientView)
    view.openedAt = self.openedAt
    view.updatedAt = self.updatedAt
    if self.hasClosedAt { view.closedAt = self.closedAt }
    return view
  }

  /// Issued items only (what the client receives), without who asked or approved, and no budget.
  static func clientLedger(_ ledger: Redress_V1_Ledger) -> Redress_V1_Ledger {
    var view = Redress_V1_Ledger()
    view.items = ledger.items.filter { $0.state == .issued }.map { item in
      .with {
        $0.id = item.id
        $0.kind = item.kind
        $0.amount = item.amount
        $0.description_p = item.description_p
        $0.state = item.state
        $0.issuedAt = item.issuedAt
      }
    }
    view.issued = ledger.issued
    return view
  }

  /// The next step in words for the client: fixed sentences by status and stage.
  static func clientNextAction(_ remedy: Redress_V1_Remedy) -> String {
    switch remedy.status {
    case .resolved: return "Nothing: the remedy is resolved."
    case .declined: return "Nothing: the claim was declined; see the timeline for why."
    case .referred: return "The matter was referred to the party responsible; we will keep you informed."
    case .withLegal: return "We are looking into what happened and will get back to you."
    default: break
    }
    switch remedy.currentStage {
    case .investigate, .acknowledge:
      return "We are looking into what happened and will get back to you."
    case .propose:
      if let last = remedy.offers.last, last.answer == .unspecified {
        return "Our round \(last.round) offer awaits your answer."
      }
      return "We are preparing an offer."
    case .compensate: return "We are issuing the compensation you accepted."
    case .fix: return "We are fixing the problem; we will ask you to confirm the fix."
    case .goodwill, .followUp: return "We will call you to check that all is well."
    case .learn: return "We are closing the remedy."
    default: return "We are handling your case."
    }
  }
}

extension Redress_V1_TimelineEntry {
  /// The entry as a client sees it, or `nil` if the client does not see it at all. Actors are never shown;
  /// summaries that could name staff, verdicts or third parties are replaced by fixed sentences.
  public var clientView: Redress_V1_TimelineEntry? {
    guard !self.internal else { return nil }
    let summary: String
    switch self.action {
    case "open": summary = "We received your report."
    case "receipt": summary = "We acknowledged your report and will take care of it."
    case "apologize": summary = "We apologized."
    case "offer": summary = self.summary  // "Offer round N proposed: fix, <amount> compensation[, goodwill]."
    case "respond": summary = "Your answer to our offer was recorded."
    case "compensate", "approve": summary = "Compensation was updated."
    case "fix": summary = "Progress on the fix was recorded."
    case "goodwill": summary = "We recorded a gesture of goodwill."
    case "follow-up": summary = "We followed up with you."
    case "learn": summary = "The remedy is resolved."
    case "decline": summary = self.summary  // the clause and the reason given to the client
    case "refer": summary = "The matter was referred to the party responsible."
    case "note": summary = self.summary  // a note someone chose to make visible
    default: return nil
    }
    return .with {
      $0.version = self.version
      $0.at = self.at
      $0.action = self.action
      $0.summary = summary
    }
  }
}
