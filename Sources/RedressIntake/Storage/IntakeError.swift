/// A failure of the intake service's own making or finding, mapped to a gRPC status in one place
/// (`IntakeError+RPCError.swift`).
public struct IntakeError: Error, Sendable, CustomStringConvertible {
  /// What kind of failure; extensible.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }
    /// The code's name.
    public var description: String { self.name }

    /// No such incident in the caller's tenant.
    public static let notFound = Code("notFound")
    /// The idempotency key was used with a different report.
    public static let idempotencyConflict = Code("idempotencyConflict")
    /// A page token that this server did not issue for these filters.
    public static let invalidPageToken = Code("invalidPageToken")
    /// The database failed; the submission was not stored.
    public static let storage = Code("storage")
    /// Configuration that cannot work.
    public static let configuration = Code("configuration")
  }

  /// What kind of failure.
  public var code: Code
  /// What went wrong and what to do; never secrets or payload text.
  public var message: String
  /// The underlying error, for logs; never shown to callers.
  public var cause: (any Error)?

  /// An error of `code` saying `message`.
  public init(code: Code, message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  /// Code, message and cause, for logs.
  public var description: String {
    if let cause {
      return "\(self.code): \(self.message) (\(cause))"
    }
    return "\(self.code): \(self.message)"
  }
}
