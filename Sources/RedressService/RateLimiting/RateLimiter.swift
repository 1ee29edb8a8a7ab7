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

    /// 2,000 calls per second, bursts of 4,000, per service identity: intake hands remediation every
    /// incident it accepts, and a backlog after an outage drains in bursts.
    public static var serviceDefaults: Self { Self(ratePerSecond: 2000, burst: 4000) }
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

  /// Buckets kept before full ones (which hold nothing a new bucket would not) are dropped: keys can come
  /// from outside (remote addresses), and their number must not grow the process without bound.
  static let pruneAbove = 10_000

  /// Takes one token from `key`'s bucket if there is one.
  public func acquire(for key: String) -> Decision {
    self.decide(for: key, consume: true)
  }

  /// What ``acquire(for:)`` would decide now, taking nothing.
  public func check(for key: String) -> Decision {
    self.decide(for: key, consume: false)
  }

  private func decide(for key: String, consume: Bool) -> Decision {
    let now = self.clock.now()
    return self.buckets.withLock { buckets in
      var bucket = buckets[key] ?? Bucket(tokens: Double(self.config.burst), updatedAt: now)
      let elapsed = max(0, now.timeIntervalSince(bucket.updatedAt))
      bucket.tokens = min(Double(self.config.burst), bucket.tokens + elapsed * self.config.ratePerSecond)
      bucket.updatedAt = now
      guard bucket.tokens >= 1 else {
        buckets[key] = bucket
        return .limited(retryAfter: (1 - bucket.tokens) / self.config.ratePerSecond)
      }
      guard consume else { return .allowed }
      bucket.tokens -= 1
      if buckets.count >= Self.pruneAbove, buckets[key] == nil {
        self.prune(&buckets, now: now)
      }
      buckets[key] = bucket
      return .allowed
    }
  }

  private func prune(_ buckets: inout [String: Bucket], now: Date) {
    let burst = Double(self.config.burst)
    buckets = buckets.filter { _, bucket in
      bucket.tokens + max(0, now.timeIntervalSince(bucket.updatedAt)) * self.config.ratePerSecond < burst
    }
    // Still full of partly used buckets (keys from very many addresses at once): start afresh rather than
    // grow. Every key then gets its burst again, which costs less than unbounded memory.
    if buckets.count >= Self.pruneAbove { buckets.removeAll() }
  }

  /// Buckets held now (tests).
  var bucketCount: Int { self.buckets.withLock { $0.count } }
}
