public import GRPCCore

/// The identity of the caller of the RPC being handled.
///
/// ``AuthenticationInterceptor`` binds it for the whole call, including a streaming response's producer, so a
/// handler reads it with ``require(_:)`` and never trusts anything in the payload about who is calling.
public enum Caller {
  /// The authenticated identity, or `nil` outside an authenticated call.
  @TaskLocal public static var current: Identity?

  /// The authenticated caller, checked to hold at least one of `roles` (any role if empty).
  ///
  /// - Throws: `unauthenticated` outside an authenticated call; `permissionDenied` naming the roles needed.
  public static func require(anyOf roles: Role...) throws(RPCError) -> Identity {
    try self.require(anyOf: Set(roles))
  }

  /// The authenticated caller, checked to hold at least one of `roles` (any role if empty).
  public static func require(anyOf roles: Set<Role>) throws(RPCError) -> Identity {
    guard let identity = Self.current else {
      throw RPCError(
        code: .unauthenticated,
        message: "This call needs a client certificate or a bearer token in the 'authorization' metadata."
      )
    }
    if roles.isEmpty || !identity.roles.isDisjoint(with: roles) {
      return identity
    }
    let needed = roles.map(\.rawValue).sorted().joined(separator: " or ")
    throw RPCError(
      code: .permissionDenied,
      message: "Identity '\(identity.name)' may not do this: it needs the role \(needed)."
    )
  }
}
