public import Foundation
public import RedressSchemas
public import RedressService

/// Checks a submission against every rule in docs/INTAKE.md and reports all broken rules at once, each with
/// its field path (`report.customer.id`, `report.labels[3]`).
public struct IncidentValidator: Sendable {
  /// Field limits; the numbers docs/INTAKE.md lists.
  public enum Limits {
    // Each is the maximum of the field its name says, in characters or UTF-8 bytes as named.
    public static let idempotencyKeyMaxCharacters = 128
    public static let customerIDMaxCharacters = 128
    public static let customerNameMaxCharacters = 200
    public static let titleMaxCharacters = 200
    public static let descriptionMaxBytes = 16 * 1024
    public static let demandTextMaxBytes = 4 * 1024
    public static let maxLinks = 20
    public static let linkMaxCharacters = 2048
    public static let maxLabels = 20
    public static let labelMaxCharacters = 64
    public static let groupingKeyMaxCharacters = 128
    /// Reports before this moment are rejected as a mistaken timestamp (an unset or zero date).
    public static let earliestOccurredAt = Date(timeIntervalSince1970: 946_684_800)  // 2000-01-01
  }

  /// How far in the future `occurred_at` may be.
  public var futureTolerance: Duration

  /// A validator allowing `occurred_at` up to `futureTolerance` ahead of the server's clock.
  public init(futureTolerance: Duration = .seconds(300)) {
    self.futureTolerance = futureTolerance
  }

  /// Every rule `request` breaks, judged at `now`.
  public func violations(of request: Redress_V1_SubmitIncidentRequest, now: Date) -> FieldViolations {
    var violations = FieldViolations()
    Self.checkKey(request.idempotencyKey, field: "idempotency_key", required: true, into: &violations)
    guard request.hasReport else {
      violations.add("report", "is required")
      return violations
    }
    self.check(request.report, now: now, into: &violations)
    return violations
  }

  private func check(_ report: Redress_V1_IncidentReport, now: Date, into violations: inout FieldViolations) {
    // The client.
    if !report.hasCustomer {
      violations.add("report.customer", "is required")
    } else {
      let customer = report.customer
      Self.checkText(
        customer.id, field: "report.customer.id", maxCharacters: Limits.customerIDMaxCharacters, into: &violations)
      Self.checkText(
        customer.name, field: "report.customer.name", maxCharacters: Limits.customerNameMaxCharacters,
        into: &violations)
      switch customer.tier {
      case .unspecified:
        if !customer.hasYearlyValue {
          violations.add("report.customer", "needs a tier or a yearly_value (or both)")
        }
      case .standard, .premium, .enterprise, .strategic:
        break
      case .UNRECOGNIZED(let value):
        violations.add("report.customer.tier", "\(value) is not an account tier (1-4)")
      }
      if customer.hasYearlyValue {
        violations.checkMoney(customer.yearlyValue, "report.customer.yearly_value", .nonNegative)
      }
    }

    // What happened.
    Self.checkText(report.title, field: "report.title", maxCharacters: Limits.titleMaxCharacters, into: &violations)
    if report.description_p.utf8.count > Limits.descriptionMaxBytes {
      violations.add(
        "report.description",
        "is \(report.description_p.utf8.count) bytes; at most \(Limits.descriptionMaxBytes) bytes (16 KiB) of UTF-8"
      )
    } else {
      violations.checkCharacters(report.description_p, "report.description", .multiline)
    }
    switch report.category {
    case .unspecified:
      violations.add("report.category", "is required (wrong item, late delivery, billing error, ...)")
    case .UNRECOGNIZED(let value):
      violations.add("report.category", "\(value) is not a category (1-8)")
    default:
      break
    }
    switch report.channel {
    case .unspecified:
      violations.add("report.channel", "is required (email, phone, chat, public social, in person, legal notice)")
    case .UNRECOGNIZED(let value):
      violations.add("report.channel", "\(value) is not a channel (1-6)")
    default:
      break
    }

    // What the client asks for.
    if report.hasDemand {
      if report.demand.text.utf8.count > Limits.demandTextMaxBytes {
        violations.add(
          "report.demand.text",
          "is \(report.demand.text.utf8.count) bytes; at most \(Limits.demandTextMaxBytes) bytes (4 KiB) of UTF-8"
        )
      } else {
        violations.checkCharacters(report.demand.text, "report.demand.text", .multiline)
      }
      if report.demand.hasAmount {
        violations.checkMoney(report.demand.amount, "report.demand.amount", .positive)
      }
    }

    // When.
    // Absent: intake records when it received the report (IntakeService), after hashing the report as sent,
    // so a retry without it replays.
    if !report.hasOccurredAt {
      // Nothing to check.
    } else if !report.occurredAt.isWellFormed {
      violations.add("report.occurred_at", "is not a valid timestamp")
    } else {
      let occurred = report.occurredAt.date
      let latest = now.addingTimeInterval(Self.seconds(self.futureTolerance))
      if occurred > latest {
        violations.add(
          "report.occurred_at",
          "is in the future; it may be at most \(Int(Self.seconds(self.futureTolerance))) s ahead of the server's clock"
        )
      } else if occurred < Limits.earliestOccurredAt {
        violations.add("report.occurred_at", "is before 2000-01-01; send when the mistake happened")
      }
    }

    // Links.
    if report.links.count > Limits.maxLinks {
      violations.add("report.links", "has \(report.links.count) links; at most \(Limits.maxLinks)")
    }
    for (index, link) in report.links.enumerated() {
      let field = "report.links[\(index)]"
      if link.count > Limits.linkMaxCharacters {
        violations.add(field, "is \(link.count) characters; at most \(Limits.linkMaxCharacters)")
      } else if !Self.isWebURL(link) {
        violations.add(field, "must be an absolute http:// or https:// URL with a host")
      }
    }

    // Labels.
    if report.labels.count > Limits.maxLabels {
      violations.add("report.labels", "has \(report.labels.count) labels; at most \(Limits.maxLabels)")
    }
    var seen: Set<String> = []
    for (index, label) in report.labels.enumerated() {
      let field = "report.labels[\(index)]"
      if label.isEmpty || label.count > Limits.labelMaxCharacters || !label.unicodeScalars.allSatisfy(Self.isLabelScalar) {
        violations.add(field, "must be 1-\(Limits.labelMaxCharacters) characters of a-z 0-9 . _ : -")
      } else if !seen.insert(label).inserted {
        violations.add(field, "repeats the label '\(label)'")
      }
    }

    // Grouping.
    if !report.groupingKey.isEmpty {
      if report.groupingKey.count > Limits.groupingKeyMaxCharacters {
        violations.add(
          "report.grouping_key",
          "is \(report.groupingKey.count) characters; at most \(Limits.groupingKeyMaxCharacters)")
      } else {
        violations.checkCharacters(report.groupingKey, "report.grouping_key", .line)
      }
    }
  }

  /// Idempotency keys: 1-128 characters of `[A-Za-z0-9._:-]`.
  static func checkKey(_ key: String, field: String, required: Bool, into violations: inout FieldViolations) {
    if key.isEmpty {
      if required {
        violations.add(field, "is required: 1-\(Limits.idempotencyKeyMaxCharacters) characters of A-Z a-z 0-9 . _ : -")
      }
      return
    }
    if key.count > Limits.idempotencyKeyMaxCharacters || !key.unicodeScalars.allSatisfy(Self.isKeyScalar) {
      violations.add(field, "must be 1-\(Limits.idempotencyKeyMaxCharacters) characters of A-Z a-z 0-9 . _ : -")
    }
  }

  private static func checkText(
    _ text: String,
    field: String,
    maxCharacters: Int,
    into violations: inout FieldViolations
  ) {
    if text.allSatisfy(\.isWhitespace) {
      violations.add(field, "is required")
    } else if text.count > maxCharacters {
      violations.add(field, "is \(text.count) characters; at most \(maxCharacters)")
    } else {
      violations.checkCharacters(text, field, .line)
    }
  }

  private static func isKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar {
    case "A"..."Z", "a"..."z", "0"..."9", ".", "_", ":", "-": true
    default: false
    }
  }

  private static func isLabelScalar(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar {
    case "a"..."z", "0"..."9", ".", "_", ":", "-": true
    default: false
    }
  }

  private static func isWebURL(_ text: String) -> Bool {
    guard let components = URLComponents(string: text),
      let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
      let host = components.host, !host.isEmpty,
      !text.unicodeScalars.contains(where: { $0.properties.isWhitespace })
    else { return false }
    return true
  }

  static func seconds(_ duration: Duration) -> TimeInterval {
    let (seconds, attoseconds) = duration.components
    return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
  }
}
