/// A wait that passed its upper bound.
public struct TimedOut: Error, CustomStringConvertible {
  /// What was being waited for.
  public var what: String
  /// The bound, when there was one.
  public var limit: Duration?

  public init(what: String, limit: Duration? = nil) {
    self.what = what
    self.limit = limit
  }

  public var description: String {
    if let limit = self.limit {
      return "timed out after \(limit) waiting for \(self.what)"
    }
    return "timed out waiting for \(self.what)"
  }
}

/// Runs `body`, failing with ``TimedOut`` if it has not finished within `limit`.
///
/// The limit is an upper bound raced against `body` in a task group, never a delay anything waits out: the
/// timer is cancelled as soon as `body` finishes. Bounds are generous; the test machines are shared and loaded.
///
/// - Parameter onTimeout: Runs when the limit passes, before ``TimedOut`` is thrown (e.g. kill a child process).
public func withTimeout<T: Sendable>(
  _ limit: Duration,
  _ what: String,
  onTimeout: @Sendable () -> Void = {},
  _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T?.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: limit)
      return nil
    }
    defer { group.cancelAll() }
    guard let first = try await group.next(), let value = first else {
      onTimeout()
      throw TimedOut(what: what, limit: limit)
    }
    return value
  }
}

/// ``withTimeout(_:_:onTimeout:_:)`` with the limit in seconds.
public func withTimeout<T: Sendable>(
  _ seconds: Double,
  _ what: String,
  _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withTimeout(.milliseconds(Int64(seconds * 1000)), what, body)
}

/// Checks `condition` every `interval` until it holds, failing with ``TimedOut`` after `seconds`. Only for
/// what gives the test no notification to wait on: another process's state, a health probe's next round.
public func eventually(
  _ seconds: Double,
  _ what: String,
  every interval: Duration = .milliseconds(100),
  _ condition: @Sendable () async throws -> Bool
) async throws {
  let deadline = ContinuousClock.now + .seconds(seconds)
  while ContinuousClock.now < deadline {
    if (try? await condition()) == true { return }
    try await Task.sleep(for: interval)
  }
  throw TimedOut(what: what)
}
