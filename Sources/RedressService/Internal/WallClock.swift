public import Foundation
import Synchronization

/// Where services read the time from, so tests can move it by hand instead of sleeping.
public protocol WallClock: Sendable {
  /// The current time.
  func now() -> Date
}

/// The system's clock.
public struct SystemWallClock: WallClock {
  public init() {}
  public func now() -> Date { Date() }
}

/// A clock that moves only when told to; for tests.
public final class ManualWallClock: WallClock {
  private let current: Mutex<Date>

  /// A clock reading `start`.
  public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
    self.current = Mutex(start)
  }

  public func now() -> Date {
    self.current.withLock { $0 }
  }

  /// Moves the clock forward by `interval` seconds.
  public func advance(by interval: TimeInterval) {
    self.current.withLock { $0 += interval }
  }

  /// Sets the clock to `date`.
  public func set(_ date: Date) {
    self.current.withLock { $0 = date }
  }
}
