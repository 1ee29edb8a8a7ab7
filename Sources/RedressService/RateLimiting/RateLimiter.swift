public import Foundation
import Synchronization

/// A token bucket per identity: each identity may make `burst` calls at once and `ratePerSecond` calls per
/// second on average. Over the limit, a call is refused with how long to wait.
public final class RateLimiter: Sendable {
  /// Limits; both must be positive.
  public struct Config: Sendable, Hashable {
    /// Tokens added per second.
    public var ratePerSecond: Double
    /// Bucket size: calls allowed back to back.
    public var burst: Int

    public init(ratePerSecond: Double, burst: Int) {
      self.ratePerSecond = ratePerSecond
      self.burst = burst
    }

    /// 50 calls per second, bursts of 100, per identity.
    public static var defaults: Self { Self(ratePerSecond: 50, burst: 100) }
  }

  /// The outcome of ``acquire(for:)``.
  public enum Decision: Sendable, Hashable {
    case allowed
    /// Refused; a token will be available after this many seconds.
    case limited(retryAfter: TimeInterval)
  }

  private struct Bucket {
    var tokens: Double
    var updatedAt: Date
  }

  private let config: Config
  private let clock: any WallClock
  private let buckets = Mutex<[String: Bucket]>([:])

  public init(config: Config, clock: any WallClock = SystemWallClock()) {
    precondition(config.ratePerSecond > 0 && config.burst > 0, "rate and burst must be positive")
    self.config = config
    self.clock = clock
  }

  /// Takes one token from `key`'s bucket if there is one.
  public func acquire(for key: String) -> Decision {
    let now = self.clock.now()
    return self.buckets.withLock { buckets in
      var bucket = buckets[key] ?? Bucket(tokens: Double(self.config.burst), updatedAt: now)
      let elapsed = max(0, now.timeIntervalSince(bucket.updatedAt))
      bucket.tokens = min(Double(self.config.burst), bucket.tokens + elapsed * self.config.ratePerSecond)
      bucket.updatedAt = now
      let decision: Decision
      if bucket.tokens >= 1 {
        bucket.tokens -= 1
        decision = .allowed
      } else {
        decision = .limited(retryAfter: (1 - bucket.tokens) / self.config.ratePerSecond)
      }
      buckets[key] = bucket
      return decision
    }
  }
}
