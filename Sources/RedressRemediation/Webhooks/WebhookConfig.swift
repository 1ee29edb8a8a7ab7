public import Foundation
public import NIOSSL

/// How the remediation service delivers webhooks; docs/OPERATIONS.md ("Webhooks") lists the keys.
public struct WebhookConfig: Sendable {
  /// Where deliveries may go.
  public var targets: WebhookTargetPolicy
  /// Attempts before a delivery is dead-lettered (the first included).
  public var maxAttempts: Int
  /// The wait after the first failed attempt; it doubles per attempt up to ``retryCap``, and each wait is
  /// drawn at random from its upper half (jitter).
  public var retryBase: Duration
  public var retryCap: Duration
  /// The longest a receiver's `Retry-After` is honoured.
  public static let maxRetryAfter: Duration = .seconds(86_400)
  /// One attempt, from resolving the host to the response head.
  public var requestTimeout: Duration
  /// How long a claimed delivery is held by the replica sending it; longer than ``requestTimeout``, so a
  /// live sender never loses its claim, and short, so a dead replica's claims come back soon.
  public var lease: Duration
  /// How often the outbox is read when nothing wakes the dispatcher (other replicas' changes; retries are
  /// woken for at their due time).
  public var pollInterval: Duration
  /// Attempts in flight at once per replica (a slow receiver holds one for up to ``requestTimeout``).
  public var batchSize: Int
  /// Subscriptions per tenant.
  public var maxSubscriptionsPerTenant: Int
  /// Delivered deliveries are kept this long (for `deliveries` and `replay`), dead ones ``deadRetention``.
  public var deliveredRetention: Duration
  public var deadRetention: Duration
  /// Certificates trusted besides the system's, for receivers with a private CA (tests, internal receivers).
  public var additionalTrustRoots: [NIOSSLCertificate]

  public init(
    targets: WebhookTargetPolicy = .init(),
    maxAttempts: Int = 12,
    retryBase: Duration = .seconds(10),
    retryCap: Duration = .seconds(3_600),
    requestTimeout: Duration = .seconds(10),
    lease: Duration = .seconds(60),
    pollInterval: Duration = .seconds(5),
    batchSize: Int = 16,
    maxSubscriptionsPerTenant: Int = 25,
    deliveredRetention: Duration = .seconds(7 * 86_400),
    deadRetention: Duration = .seconds(30 * 86_400),
    additionalTrustRoots: [NIOSSLCertificate] = []
  ) {
    self.targets = targets
    self.maxAttempts = maxAttempts
    self.retryBase = retryBase
    self.retryCap = retryCap
    self.requestTimeout = requestTimeout
    self.lease = lease
    self.pollInterval = pollInterval
    self.batchSize = batchSize
    self.maxSubscriptionsPerTenant = maxSubscriptionsPerTenant
    self.deliveredRetention = deliveredRetention
    self.deadRetention = deadRetention
    self.additionalTrustRoots = additionalTrustRoots
  }

  /// The wait before the attempt after `failures` failed ones (≥ 1): base · 2^(failures − 1), capped, drawn
  /// from its upper half.
  public func retryDelay(afterFailures failures: Int) -> Duration {
    let base = self.retryBase.timeInterval
    let full = min(self.retryCap.timeInterval, base * pow(2, Double(min(failures - 1, 40))))
    return .milliseconds(Int64(Double.random(in: (full / 2)...full) * 1_000))
  }
}
