import Foundation
public import RedressSchemas

extension Playbook {
  /// What must happen next, in plain words, derived only from the remedy.
  public static func nextAction(for remedy: Redress_V1_Remedy) -> String {
    switch remedy.status {
    case .resolved:
      return "Nothing: the remedy is resolved."
    case .declined:
      return "Nothing: the claim was declined and the client acknowledged."
    case .referred:
      return remedy.hasClosedAt
        ? "Nothing: the referral is closed."
        : "Track the referral (refer with notes) until the third party closes it."
    case .withLegal:
      return remedy.hasClosedAt
        ? "Nothing: the legal matter is closed."
        : "Legal (\(remedy.investigation.legalOwner)) handles the bad-faith demand and records its status."
    default:
      break
    }
    guard let active = remedy.stages.first(where: { $0.state == .active }) else {
      switch remedy.investigation.verdict {
      case .outsidePolicy:
        return "Decline the claim politely, with the reason and the policy clause."
      case .thirdParty:
        return "Refer the claim to \(remedy.investigation.thirdParty) and track it."
      default:
        return "Nothing."
      }
    }
    switch active.stage {
    case .investigate:
      let research = "investigate: record the root cause, the extent (clients, orders, cost) and a verdict citing the policy clause."
      guard remedy.hasReceipt else {
        let privately = remedy.raisedOn == .publicSocial ? " and offer a private channel to continue on" : ""
        return "Acknowledge receipt now (tell the client you heard them and will take care of it\(privately)); then " + research
      }
      return "I" + research.dropFirst()
    case .acknowledge:
      if remedy.investigation.verdict == .outsidePolicy {
        return remedy.hasReceipt
          ? "Decline the claim politely, with the reason and the policy clause (no apology is owed for a claim outside policy)."
          : "Acknowledge receipt, then decline the claim politely with the reason and the policy clause (no apology is owed outside policy)."
      }
      return remedy.raisedOn == .publicSocial
        ? "Apologize to the client on a private channel (email, phone, chat or in person): the complaint was public."
        : "Apologize to the client (email, phone, chat or in person)."
    case .propose:
      if let last = remedy.offers.last, last.answer == .unspecified, last.round >= remedy.negotiationStartRound {
        return "Record the client's answer to the round \(last.round) offer: accepted, rejected or countered."
      }
      let next = (remedy.offers.last?.round ?? 0) + 1
      return Self.escalatedNegotiation(remedy)
        ? "Propose round \(next) (the negotiation escalated: it needs the approver role): the fix, compensation and goodwill."
        : "Propose an offer (round \(next)): the fix, compensation and goodwill; then ask whether it satisfies the client."
    case .compensate:
      let waiting = remedy.compensation.items.filter { $0.state == .awaitingApproval }
      if let item = waiting.first {
        return "An approver other than \(item.requestedBy) must approve or reject compensation \(item.id) (\(item.amount.text)); \(item.requestedBy) may withdraw it."
      }
      let owed = Self.compensationOwed(remedy)
      let issued = remedy.compensation.issued
      return "Issue the compensation the client accepted: \(issued.text) of \(Redress_V1_Money(currency: issued.currency, minor: owed).text) issued."
    case .fix:
      let fix = remedy.fix
      if fix.owner.isEmpty { return "Assign the fix to a named person with a due date." }
      if !fix.hasDoneAt { return "\(fix.owner) must finish the fix by \(fix.dueAt.date.iso8601), then mark it done." }
      if !fix.hasVerifiedAt { return "Verify the fix." }
      return "Have the client confirm the fix."
    case .goodwill:
      return "Make a goodwill gesture beyond the agreement, or skip it with a reason."
    case .followUp:
      let when = remedy.followUp.hasScheduledAt ? " on or after \(remedy.followUp.scheduledAt.date.iso8601)" : ""
      return "Call (or meet) the client\(when) to make sure it is really resolved, and record the outcome."
    case .learn:
      return "Record the lesson, a prevention action with its owner, and a root-cause fingerprint."
    default:
      return "Nothing."
    }
  }

  /// Whether the current negotiation escalated for too many rounds, so the next offer needs an approver.
  static func escalatedNegotiation(_ remedy: Redress_V1_Remedy) -> Bool {
    let start = remedy.offers.first(where: { $0.round == remedy.negotiationStartRound })?.proposedAt.date
    guard let start else { return false }
    return remedy.escalations.contains { $0.kind == "negotiation-rounds" && $0.at.date >= start }
  }

  /// Compensation owed: the sum of every accepted offer's compensation terms (saturating: each term is
  /// bounded when offered, so only a corrupt stored remedy could reach the bound).
  static func compensationOwed(_ remedy: Redress_V1_Remedy) -> Int64 {
    let terms = remedy.offers.lazy.filter { $0.answer == .accepted }.flatMap(\.compensation).map(\.amount.amountMinor)
    return Redress_V1_Money.sum(terms) ?? .max
  }
}
