import GRPCCore

extension RedressClient {
  enum Repeatability {
    /// Safe to repeat: reads, and submits (their idempotency key makes a repeat a replay).
    case safe
    /// Repeat only when the server certainly did nothing (rate limited before the handler ran).
    case onlyIfRefused
  }

  /// Runs `call`, retrying per ``Configuration/retry``: on `unavailable` (when `repeatability` is `.safe`) and
  /// on `resourceExhausted` that carries a retry-after (the rate limiter's answer; other `resourceExhausted`
  /// answers, such as a message over the size limit, would fail again).
  func retrying<Result: Sendable>(
    _ repeatability: Repeatability,
    _ call: () async throws -> Result
  ) async throws -> Result {
    let policy = self.configuration.retry
    var attempt = 1
    var backoff = policy.initialBackoff
    while true {
      do {
        return try await call()
      } catch let error as RPCError {
        let retryAfter = Self.retryAfter(error)
        let retryable: Bool =
          switch error.code {
          case .unavailable: repeatability == .safe
          case .resourceExhausted: retryAfter != nil
          default: false
          }
        guard retryable, attempt < policy.maxAttempts else { throw error }
        // Full jitter, but never sooner than the server asked.
        let jittered = backoff * Double.random(in: 0...1)
        let delay = max(jittered, retryAfter ?? .zero)
        self.logger.debug(
          "retrying",
          metadata: ["attempt": "\(attempt)", "code": "\(error.code)", "delay": "\(delay)"]
        )
        try await Task.sleep(for: delay)
        attempt += 1
        backoff = min(backoff * policy.multiplier, policy.maximumBackoff)
      }
    }
  }

  static func retryAfter(_ error: RPCError) -> Duration? {
    guard let text = error.metadata[stringValues: "retry-after-ms"].first(where: { _ in true }),
      let milliseconds = Int(text), milliseconds >= 0
    else { return nil }
    return .milliseconds(milliseconds)
  }
}
