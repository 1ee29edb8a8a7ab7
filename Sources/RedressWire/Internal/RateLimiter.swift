import NIOCore

/// Counts events in fixed windows; says when the count passes a limit (flood protection).
struct RateLimiter {
  private let limit: ConnectionConfig.RateLimit
  private var windowStart: NIODeadline
  private var count = 0

  init(_ limit: ConnectionConfig.RateLimit, now: NIODeadline) {
    self.limit = limit
    self.windowStart = now
  }

  /// Records one event; returns `true` if the limit is now exceeded.
  mutating func record(now: NIODeadline) -> Bool {
    if now - self.windowStart >= TimeAmount(self.limit.interval) {
      self.windowStart = now
      self.count = 0
    }
    self.count += 1
    return self.count > self.limit.maxEvents
  }
}
