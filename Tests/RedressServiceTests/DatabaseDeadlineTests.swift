import Foundation
import RedressService
import Synchronization
import Testing

@Suite("Database deadlines")
struct DatabaseDeadlineTests {
  /// An operation that ignores cancellation: it ends only when `release` is called.
  final class Stubborn: Sendable {
    private let waiter = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let finished = Atomic<Bool>(false)
    var hasFinished: Bool { self.finished.load(ordering: .acquiring) }

    func run() async -> Int {
      await withCheckedContinuation { continuation in self.waiter.withLock { $0 = continuation } }
      self.finished.store(true, ordering: .releasing)
      return 1
    }

    func release() async throws {
      while true {
        if let continuation = self.waiter.withLock({ $0.take() }) {
          continuation.resume()
          return
        }
        try await Task.sleep(for: .milliseconds(5))
      }
    }
  }

  @Test("an operation within the deadline answers with its own result or error")
  func withinDeadline() async throws {
    #expect(try await withDatabaseDeadline(.seconds(30)) { 42 } == 42)
    struct Refused: Error {}
    await #expect(throws: Refused.self) { try await withDatabaseDeadline(.seconds(30)) { throw Refused() } }
  }

  @Test("past the deadline the caller is answered UNAVAILABLE even if the operation ignores cancellation")
  func deadlineDoesNotWaitForTheOperation() async throws {
    let stubborn = Stubborn()
    await #expect(throws: PostgresUnavailable.self) {
      try await withDatabaseDeadline(.milliseconds(50)) { await stubborn.run() }
    }
    #expect(!stubborn.hasFinished, "the caller was answered while the operation still ran")
    try await stubborn.release()
  }

  @Test("cancelling the caller answers it at once, even if the operation ignores cancellation")
  func cancellationDoesNotWaitForTheOperation() async throws {
    let stubborn = Stubborn()
    let caller = Task { try await withDatabaseDeadline(.seconds(3600)) { await stubborn.run() } }
    try await Task.sleep(for: .milliseconds(20))
    caller.cancel()
    await #expect(throws: CancellationError.self) { try await caller.value }
    #expect(!stubborn.hasFinished)
    try await stubborn.release()
  }
}
