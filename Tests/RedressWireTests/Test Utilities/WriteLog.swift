import Synchronization
import RedressTestSupport

/// Counts a server handler's message writes as they start and as they complete, and lets a test
/// wait, without sleeping or polling, until the counts satisfy a condition.
///
/// A write that started and did not complete is one the transport is holding back (its windows
/// are spent): the flow-control tests look for exactly that.
final class WriteLog: Sendable {
  /// The counts at one moment.
  struct Counts: Sendable, Equatable, CustomStringConvertible {
    /// Writes the handler began.
    var started = 0
    /// Writes that returned.
    var completed = 0
    /// The handler wrote everything and returned.
    var finished = false

    var description: String {
      "\(self.started) started, \(self.completed) completed\(self.finished ? ", finished" : "")"
    }
  }

  private struct Waiter {
    let id: UInt64
    let condition: @Sendable (Counts) -> Bool
    let continuation: CheckedContinuation<Counts, any Error>
  }

  private struct State {
    var counts = Counts()
    var waiters: [Waiter] = []
    var nextWaiterID: UInt64 = 0
  }

  private let state = Mutex(State())

  /// The counts now.
  var counts: Counts {
    self.state.withLock { $0.counts }
  }

  /// The handler is about to write a message.
  func writeStarted() {
    self.update { $0.started += 1 }
  }

  /// A write returned.
  func writeCompleted() {
    self.update { $0.completed += 1 }
  }

  /// The handler wrote everything.
  func handlerFinished() {
    self.update { $0.finished = true }
  }

  private func update(_ change: (inout Counts) -> Void) {
    let ready = self.state.withLock { state -> [(CheckedContinuation<Counts, any Error>, Counts)] in
      change(&state.counts)
      let counts = state.counts
      var ready: [(CheckedContinuation<Counts, any Error>, Counts)] = []
      state.waiters.removeAll { waiter in
        guard waiter.condition(counts) else { return false }
        ready.append((waiter.continuation, counts))
        return true
      }
      return ready
    }
    for (continuation, counts) in ready {
      continuation.resume(returning: counts)
    }
  }

  /// Waits until `condition` holds and returns the counts that satisfied it; throws
  /// `CancellationError` if the waiting task is cancelled first (so `withTimeout` can end it).
  @discardableResult
  func wait(until condition: @escaping @Sendable (Counts) -> Bool) async throws -> Counts {
    let id = self.state.withLock { state -> UInt64 in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Counts, any Error>) in
        let immediate = self.state.withLock { state -> Result<Counts, any Error>? in
          if Task.isCancelled { return .failure(CancellationError()) }
          if condition(state.counts) { return .success(state.counts) }
          state.waiters.append(Waiter(id: id, condition: condition, continuation: continuation))
          return nil
        }
        if let immediate { continuation.resume(with: immediate) }
      }
    } onCancel: {
      let waiter = self.state.withLock { state -> Waiter? in
        guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return state.waiters.remove(at: index)
      }
      waiter?.continuation.resume(throwing: CancellationError())
    }
  }
}
