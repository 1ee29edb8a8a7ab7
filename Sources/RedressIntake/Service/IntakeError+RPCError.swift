public import GRPCCore

extension IntakeError {
  /// The one place intake's errors become gRPC statuses.
  public var rpcError: RPCError {
    let code: RPCError.Code =
      switch self.code {
      case .notFound: .notFound
      case .idempotencyConflict: .alreadyExists
      case .invalidPageToken: .invalidArgument
      case .storage: .unavailable
      default: .internalError
      }
    return RPCError(code: code, message: self.message)
  }
}
