public import RedressSchemas

extension Playbook {
  /// Where a group stands (many clients, one mistake), from its remedies: how many clients were reached,
  /// apologized to, compensated and followed up, and the money per currency against the group budget.
  public func summary(ofGroup groupID: String, remedies: [Redress_V1_Remedy]) -> Redress_V1_GroupSummary {
    var summary = Redress_V1_GroupSummary()
    summary.groupID = groupID
    summary.remedies = Int32(clamping: remedies.count)
    var issued: [String: Int64] = [:]
    var committed: [String: Int64] = [:]
    for remedy in remedies {
      switch remedy.status {
      case .open: summary.open += 1
      case .resolved: summary.resolved += 1
      case .declined: summary.declined += 1
      case .referred: summary.referred += 1
      case .withLegal: summary.withLegal += 1
      default: break
      }
      if remedy.hasReceipt || remedy.hasAcknowledgement { summary.reached += 1 }
      if remedy.hasAcknowledgement { summary.apologized += 1 }
      if remedy.compensation.issued.amountMinor > 0 { summary.compensated += 1 }
      if !remedy.followUp.attempts.isEmpty { summary.followedUp += 1 }
      if !remedy.investigation.sharedFromRemedyID.isEmpty { summary.sharedInvestigation += 1 }
      let currency = remedy.compensation.budget.currency
      issued[currency] = Self.saturatingAdd(issued[currency] ?? 0, remedy.compensation.issued.amountMinor)
      committed[currency] = Self.saturatingAdd(committed[currency] ?? 0, remedy.compensation.committed.amountMinor)
    }
    let currencies = issued.keys.sorted()
    summary.compensationIssued = currencies.map { .init(currency: $0, minor: issued[$0] ?? 0) }
    summary.compensationCommitted = currencies.map { .init(currency: $0, minor: committed[$0] ?? 0) }
    summary.budget = currencies.map { .init(currency: $0, minor: self.policy.limits(for: $0).groupCompensationBudgetMinor) }
    summary.complete = !remedies.isEmpty && summary.open == 0
    return summary
  }

  private static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? .max : sum
  }
}
