import Synchronization
import RedressTestSupport

/// Values appended in order by event loops, and a test waiting for the first that matches.
///
/// A test waits with ``first(where:)`` (bounded by ``withTimeout(_:_:_:)``) instead of reading once,
/// since what it waits for is produced on another thread.
final class AwaitableLog<Element: Sendable>: Sendable {
  private struct Waiter {
    var predicate: @Sendable (Element) -> Bool
    var continuation: CheckedContinuation<Element, any Error>
  }

  private struct State {
    var elements: [Element] = []
    var waiters: [UInt64: Waiter] = [:]
    var nextWaiterID: UInt64 = 0
  }

  private let state = Mutex(State())

  init() {}

  /// Everything appended so far.
  var all: [Element] { self.state.withLock { $0.elements } }

  /// Appends a value and wakes the waiters it matches.
  func append(_ element: Element) {
    let matched = self.state.withLock { state -> [Waiter] in
      state.elements.append(element)
      let ids = state.waiters.filter { $0.value.predicate(element) }.map(\.key)
      return ids.compactMap { state.waiters.removeValue(forKey: $0) }
    }
    for waiter in matched { waiter.continuation.resume(returning: element) }
  }

  /// The first value, already appended or still to come, for which `predicate` holds.
  func first(where predicate: @escaping @Sendable (Element) -> Bool) async throws -> Element {
    let id = self.state.withLock { state -> UInt64 in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Element, any Error>) in
        let ready = self.state.withLock { state -> Result<Element, any Error>? in
          if let element = state.elements.first(where: predicate) { return .success(element) }
          if Task.isCancelled { return .failure(CancellationError()) }
          state.waiters[id] = Waiter(predicate: predicate, continuation: continuation)
          return nil
        }
        if let ready { continuation.resume(with: ready) }
      }
    } onCancel: {
      let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
      waiter?.continuation.resume(throwing: CancellationError())
    }
  }
}
