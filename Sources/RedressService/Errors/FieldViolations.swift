import GRPCCore
public import GRPCProtobuf

/// Every rule a request breaks, collected so one answer lists them all.
///
/// ```swift
/// var violations = FieldViolations()
/// if title.isEmpty { violations.add("report.title", "is required") }
/// try violations.throwIfAny()
/// ```
public struct FieldViolations: Sendable, Hashable {
  /// One broken rule.
  public struct Violation: Sendable, Hashable {
    /// Path of the field, e.g. `report.labels[3]`.
    public var field: String
    /// What is wrong and what is allowed.
    public var description: String
  }

  public private(set) var all: [Violation] = []

  public init() {}

  public var isEmpty: Bool { self.all.isEmpty }

  /// Records that `field` breaks a rule, described in words that say what is allowed.
  public mutating func add(_ field: String, _ description: String) {
    self.all.append(Violation(field: field, description: description))
  }

  /// One line naming every violation: `2 problems: report.title: is required; ...`.
  public var message: String {
    let list = self.all.map { "\($0.field): \($0.description)" }.joined(separator: "; ")
    let count = self.all.count == 1 ? "1 problem" : "\(self.all.count) problems"
    return "The request has \(count): \(list)"
  }

  /// `invalidArgument` with ``message`` and a google.rpc.BadRequest in the status details.
  public var status: GoogleRPCStatus {
    GoogleRPCStatus(
      code: .invalidArgument,
      message: self.message,
      details: [
        .badRequest(
          ErrorDetails.BadRequest(
            violations: self.all.map { .init(field: $0.field, description: $0.description) }
          )
        )
      ]
    )
  }

  /// Throws ``status`` if any rule was broken.
  public func throwIfAny() throws(GoogleRPCStatus) {
    if !self.all.isEmpty {
      throw self.status
    }
  }
}
