public import GRPCCore

/// The deadline of the RPC the current task serves, from its `grpc-timeout`, if it has one.
///
/// grpc-swift cancels a handler's `context.cancellation` when the timeout passes but leaves the status to the
/// handler; a long-lived stream reads this to answer `deadlineExceeded` rather than `unavailable` or
/// `cancelled` (``withStreamLifetime(context:_:)``).
public enum RPCDeadline {
  @TaskLocal public static var current: ContinuousClock.Instant?

  /// Whether the current RPC's deadline has passed.
  public static var hasPassed: Bool {
    guard let deadline = Self.current else { return false }
    return ContinuousClock.now >= deadline
  }

  /// Parses a `grpc-timeout` value: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
  public static func timeout(parsing value: String) -> Duration? {
    guard let unit = value.last, (2...9).contains(value.count) else { return nil }
    let digits = value.dropLast()
    guard digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let amount = Int64(digits) else { return nil }
    switch unit {
    case "H": return .seconds(amount * 3600)
    case "M": return .seconds(amount * 60)
    case "S": return .seconds(amount)
    case "m": return .milliseconds(amount)
    case "u": return .microseconds(amount)
    case "n": return .nanoseconds(amount)
    default: return nil
    }
  }
}

/// Binds ``RPCDeadline/current`` for the handler and for a streaming response's producer.
public struct DeadlineInterceptor: ServerInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    guard let value = request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true }),
      let timeout = RPCDeadline.timeout(parsing: value)
    else {
      return try await next(request, context)
    }
    let deadline = ContinuousClock.now + timeout
    let response = try await RPCDeadline.$current.withValue(deadline) {
      try await next(request, context)
    }
    return response.binding(RPCDeadline.$current, to: deadline)
  }
}
