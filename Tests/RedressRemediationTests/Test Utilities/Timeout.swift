import Foundation

struct TimedOut: Error, CustomStringConvertible {
  var what: String
  var description: String { "timed out waiting for \(self.what)" }
}

/// Runs `body`, failing with ``TimedOut`` if it takes longer than `seconds` (generous: the machine is loaded).
func withTimeout<T: Sendable>(
  _ seconds: Double,
  _ what: String,
  _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T?.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
      return nil
    }
    defer { group.cancelAll() }
    guard let first = try await group.next(), let value = first else {
      throw TimedOut(what: what)
    }
    return value
  }
}
