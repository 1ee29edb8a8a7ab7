public import RedressSchemas

/// Decides an incident's priority from impact × urgency and flags demands above the policy amount.
///
/// Deterministic: the same report and policy always give the same triage, and every rule that changed
/// something adds one reason, in the order the rules ran. The matrix (docs/INTAKE.md):
///
/// | impact \ urgency | low | medium | high |
/// |------------------|-----|--------|------|
/// | high             | P3  | P2     | P1   |
/// | medium           | P4  | P3     | P2   |
/// | low              | P4  | P4     | P3   |
public struct Triager: Sendable {
  /// The amounts triage compares against.
  public let policy: TriagePolicy

  /// A triager applying `policy`.
  public init(policy: TriagePolicy) {
    self.policy = policy
  }

  /// The priority for `impact` and `urgency` (both must be low, medium or high).
  public static func priority(impact: Redress_V1_Level, urgency: Redress_V1_Level) -> Redress_V1_Priority {
    switch (impact, urgency) {
    case (.high, .high): .p1
    case (.high, .medium), (.medium, .high): .p2
    case (.high, .low), (.medium, .medium), (.low, .high): .p3
    default: .p4
    }
  }

  /// Triage of a validated report.
  public func triage(_ report: Redress_V1_IncidentReport) -> Redress_V1_Triage {
    var reasons: [String] = []

    // Impact: who the client is, then what kind of harm.
    var impact = Redress_V1_Level.low
    switch report.customer.tier {
    case .premium:
      impact = .medium
      reasons.append("Premium account: impact medium.")
    case .enterprise, .strategic:
      impact = .high
      let name = report.customer.tier == .enterprise ? "Enterprise" : "Strategic"
      reasons.append("\(name) account: impact high.")
    case .standard:
      reasons.append("Standard account: impact low.")
    default:
      break
    }
    if report.customer.hasYearlyValue {
      let value = report.customer.yearlyValue
      if let thresholds = self.policy.yearlyValueThresholds[value.currency] {
        let fromValue: Redress_V1_Level =
          value.amountMinor >= thresholds.highMinor
          ? .high : value.amountMinor >= thresholds.mediumMinor ? .medium : .low
        if fromValue.rawValue > impact.rawValue {
          impact = fromValue
          reasons.append("Yearly value \(Self.format(value)): impact \(Self.name(fromValue)).")
        } else if report.customer.tier == .unspecified {
          reasons.append("Yearly value \(Self.format(value)): impact \(Self.name(impact)).")
        }
      } else {
        reasons.append("Yearly value in \(value.currency) has no configured thresholds; it does not change impact.")
      }
    }
    switch report.category {
    case .contentRights, .defectiveProduct:
      if impact == .low {
        impact = .medium
        let what = report.category == .contentRights ? "A content-rights claim carries legal exposure" : "A defective product may cause harm"
        reasons.append("\(what): impact raised to medium.")
      }
    default:
      break
    }

    // Urgency: the kind of mistake, then where it was raised.
    var urgency: Redress_V1_Level
    switch report.category {
    case .defectiveProduct, .serviceFailure:
      urgency = .high
      reasons.append("\(Self.name(report.category)): urgency high.")
    case .wrongItem, .lateDelivery, .billingError, .contentRights:
      urgency = .medium
      reasons.append("\(Self.name(report.category)): urgency medium.")
    default:
      urgency = .low
      reasons.append("\(Self.name(report.category)): urgency low.")
    }
    switch report.channel {
    case .publicSocial:
      if urgency != .high {
        urgency = urgency == .low ? .medium : .high
        reasons.append("Raised on a public channel: urgency raised to \(Self.name(urgency)).")
      } else {
        reasons.append("Raised on a public channel: urgency stays high.")
      }
    case .legalNotice:
      urgency = .high
      reasons.append("Raised by legal notice: urgency high.")
    default:
      break
    }

    let priority = Self.priority(impact: impact, urgency: urgency)
    reasons.append("Impact \(Self.name(impact)) × urgency \(Self.name(urgency)): \(Self.name(priority)).")

    // Review: a demand above what policy lets anyone promise.
    var needsReview = false
    if report.hasDemand, report.demand.hasAmount {
      let amount = report.demand.amount
      if let limit = self.policy.reviewAboveMinor[amount.currency] {
        if amount.amountMinor > limit {
          needsReview = true
          reasons.append(
            "Demand \(Self.format(amount)) is above the policy amount \(Self.format(.with { $0.currency = amount.currency; $0.amountMinor = limit })): needs review."
          )
        }
      } else {
        needsReview = true
        reasons.append("No policy amount is configured for \(amount.currency): the demand needs review.")
      }
    }

    return .with {
      $0.impact = impact
      $0.urgency = urgency
      $0.priority = priority
      $0.needsReview = needsReview
      $0.reasons = reasons
    }
  }

  /// `12345 USD` minor units as `123.45 USD`, assuming two decimals except for zero-decimal currencies.
  static func format(_ money: Redress_V1_Money) -> String {
    let zeroDecimal: Set<String> = ["JPY", "KRW", "ISK", "CLP", "VND", "XAF", "XOF", "HUF"]
    if zeroDecimal.contains(money.currency) {
      return "\(money.amountMinor) \(money.currency)"
    }
    let sign = money.amountMinor < 0 ? "-" : ""
    let magnitude = money.amountMinor.magnitude
    let cents = magnitude % 100
    return "\(sign)\(magnitude / 100).\(cents < 10 ? "0" : "")\(cents) \(money.currency)"
  }

  static func name(_ level: Redress_V1_Level) -> String {
    switch level {
    case .low: "low"
    case .medium: "medium"
    case .high: "high"
    default: "unspecified"
    }
  }

  static func name(_ priority: Redress_V1_Priority) -> String {
    switch priority {
    case .p1: "P1"
    case .p2: "P2"
    case .p3: "P3"
    case .p4: "P4"
    default: "unspecified"
    }
  }

  static func name(_ category: Redress_V1_Category) -> String {
    switch category {
    case .wrongItem: "Wrong item"
    case .lateDelivery: "Late delivery"
    case .billingError: "Billing error"
    case .defectiveProduct: "Defective product"
    case .serviceFailure: "Service failure"
    case .contentRights: "Content rights"
    case .communication: "Communication"
    case .other: "Other"
    default: "Unspecified category"
    }
  }
}
