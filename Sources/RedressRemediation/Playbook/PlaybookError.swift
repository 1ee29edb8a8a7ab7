public import RedressService

/// Why the playbook refused an action. Mapped to an `RPCError` in one place (``RemediationService``).
public struct PlaybookError: Error, Sendable, CustomStringConvertible {
  /// The kind of refusal; extensible.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }
    /// The code's name.
    public var description: String { self.name }

    /// A playbook rule: something else must happen first (`failedPrecondition`).
    public static let ruleViolation = Code("rule violation")
    /// The request itself is malformed; see ``PlaybookError/fieldViolations`` (`invalidArgument`).
    public static let invalidArgument = Code("invalid argument")
    /// The caller's roles do not allow the action (`permissionDenied`).
    public static let permissionDenied = Code("permission denied")
    /// The caller acted on an older version of the remedy (`aborted`).
    public static let staleVersion = Code("stale version")
    /// No such remedy or item in the caller's tenant (`notFound`).
    public static let notFound = Code("not found")
  }

  /// The kind of refusal.
  public var code: Code
  /// What was wrong and what to do about it.
  public var message: String
  /// For ``Code/invalidArgument``: every broken field rule.
  public var fieldViolations: FieldViolations?

  /// A refusal of kind `code` explained by `message`.
  public init(code: Code, message: String, fieldViolations: FieldViolations? = nil) {
    self.code = code
    self.message = message
    self.fieldViolations = fieldViolations
  }

  /// The code and the message.
  public var description: String { "\(self.code): \(self.message)" }

  static func rule(_ message: String) -> Self { Self(code: .ruleViolation, message: message) }
  static func denied(_ message: String) -> Self { Self(code: .permissionDenied, message: message) }
  static func notFound(_ message: String) -> Self { Self(code: .notFound, message: message) }
  static func invalid(_ violations: FieldViolations) -> Self {
    Self(code: .invalidArgument, message: violations.message, fieldViolations: violations)
  }
  static func invalid(_ field: String, _ description: String) -> Self {
    var violations = FieldViolations()
    violations.add(field, description)
    return .invalid(violations)
  }
}
