import Foundation
@testable import RedressService
import Synchronization
import Testing

@Suite("Database deadlines")
struct DatabaseDeadlineTests {
  /// An operation that ignores cancellation: it ends only when `release` is called.
  final class Stubborn: Sendable {
    private let waiter = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let finished = Atomic<Bool>(false)
    /// Yields once the operation is waiting (so a test acts on it without guessing when).
    let started: AsyncStream<Void>
    private let startedContinuation: AsyncStream<Void>.Continuation
    var hasFinished: Bool { self.finished.load(ordering: .acquiring) }

    init() {
      (self.started, self.startedContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    func run() async -> Int {
      await withCheckedContinuation { continuation in
        self.waiter.withLock { $0 = continuation }
        self.startedContinuation.yield()
        self.startedContinuation.finish()
      }
      self.finished.store(true, ordering: .releasing)
      return 1
    }

    /// Waits until the operation is waiting (unless the test already did, reading `started`), then lets it end.
    func release() async {
      if self.waiter.withLock({ $0 == nil }) {
        for await _ in self.started {}
      }
      self.waiter.withLock { $0.take() }?.resume()
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
    await stubborn.release()
  }

  @Test("cancelling the caller answers it at once, even if the operation ignores cancellation")
  func cancellationDoesNotWaitForTheOperation() async throws {
    let stubborn = Stubborn()
    let caller = Task { try await withDatabaseDeadline(.seconds(3600)) { await stubborn.run() } }
    // Cancel once the operation is under way (the stream ends when it starts).
    for await _ in stubborn.started {}
    caller.cancel()
    await #expect(throws: CancellationError.self) { try await caller.value }
    #expect(!stubborn.hasFinished)
    await stubborn.release()
  }

  @Test("the notification listener retries after 1 s, doubling to at most 10 s while the database stays away")
  func listenerBackoff() {
    let delays = (1...7).map { PostgresListener.retryDelay(afterFailures: $0) }
    #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10), .seconds(10)])
    #expect(PostgresListener.retryDelay(afterFailures: 0) == .seconds(1))
    #expect(PostgresListener.retryDelay(afterFailures: 1_000) == PostgresListener.maximumRetryDelay)
  }
}
