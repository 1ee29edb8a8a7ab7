import Logging
import Synchronization

/// Lets one log line through per interval and counts the ones it held back, so an event a stranger can
/// cause at will (a refused connection, a wrong token) cannot flood the log.
///
/// ```swift
/// let throttle = LogThrottle(interval: .seconds(10))
/// if let suppressed = throttle.admit() {
///   logger.notice("unknown bearer token", metadata: ["suppressed_since_last": "\(suppressed)"])
/// }
/// ```
public final class LogThrottle: Sendable {
  private struct State {
    var lastLogged: ContinuousClock.Instant?
    var suppressed = 0
  }

  private let interval: Duration
  private let state = Mutex(State())

  /// At most one line per `interval`.
  public init(interval: Duration = .seconds(10)) {
    self.interval = interval
  }

  /// `nil` if this line should be dropped; otherwise how many were dropped since the last one logged.
  public func admit() -> Int? {
    let now = ContinuousClock.now
    return self.state.withLock { state in
      if let last = state.lastLogged, last.duration(to: now) < self.interval {
        state.suppressed += 1
        return nil
      }
      let suppressed = state.suppressed
      state.lastLogged = now
      state.suppressed = 0
      return suppressed
    }
  }
}
