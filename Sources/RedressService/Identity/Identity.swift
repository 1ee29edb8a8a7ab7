/// An authenticated caller: a person's tool, an internal service, or an operator, always in one tenant.
public struct Identity: Sendable, Hashable, Codable {
  /// The identity's name, unique across the deployment (e.g. `intake-service`, `support-console`).
  public var name: String
  /// The tenant whose data this identity may see; callers never see another tenant's data.
  public var tenant: String
  /// What this identity may do.
  public var roles: Set<Role>

  /// An identity named `name` in `tenant` with `roles`.
  public init(name: String, tenant: String, roles: Set<Role>) {
    self.name = name
    self.tenant = tenant
    self.roles = roles
  }

  /// Whether the identity holds `role`.
  public func has(_ role: Role) -> Bool {
    self.roles.contains(role)
  }
}

/// A permission an identity holds. Each service documents which roles each RPC needs.
public struct Role: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
  public var rawValue: String

  public init(rawValue: String) {
    self.rawValue = rawValue
  }

  public var description: String { self.rawValue }

  /// May submit incidents to intake.
  public static let submit = Role(rawValue: "submit")
  /// May read incidents and remedies of its tenant.
  public static let read = Role(rawValue: "read")
  /// A Redress service calling another (intake opening remedies); may act on behalf of any tenant it carries.
  public static let service = Role(rawValue: "service")
  /// May take playbook actions on remedies.
  public static let `operator` = Role(rawValue: "operator")
  /// May approve compensation above the approval threshold.
  public static let approver = Role(rawValue: "approver")
  /// Owns bad-faith demands escalated to legal.
  public static let legal = Role(rawValue: "legal")
  /// A client-facing tool: sees the client's view of a remedy (no internal notes or investigation details).
  public static let clientTool = Role(rawValue: "client-tool")
  /// May scrape the service's metrics endpoint (`GET /metrics`, bearer token); nothing else.
  public static let metrics = Role(rawValue: "metrics")
  /// Manages its tenant's webhook subscriptions (they receive the tenant's remedies): nothing else by itself.
  public static let admin = Role(rawValue: "admin")

  /// Every role Redress knows, for validating configuration.
  public static let all: Set<Role> = [.submit, .read, .service, .operator, .approver, .legal, .clientTool, .metrics, .admin]
}
