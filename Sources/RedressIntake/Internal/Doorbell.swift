import Synchronization

/// A wake-up signal for one waiter: the store rings it after committing new incidents, and the outbox,
/// idle between rounds, waits on it. A ring with nobody waiting is remembered until the next wait.
public final class Doorbell: Sendable {
  private struct State {
    var rung = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())

  /// A doorbell nobody has rung.
  public init() {}

  /// Wakes the waiter, or the next one to wait.
  public func ring() {
    let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
      if let waiter = state.waiter {
        state.waiter = nil
        return waiter
      }
      state.rung = true
      return nil
    }
    waiter?.resume()
  }

  /// Returns once rung (at once if rung since the last wait) or when the task is cancelled.
  public func wait() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumeNow = self.state.withLock { state -> Bool in
          if state.rung || Task.isCancelled {
            state.rung = false
            return true
          }
          state.waiter = continuation
          return false
        }
        if resumeNow {
          continuation.resume()
        }
      }
    } onCancel: {
      let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
        defer { state.waiter = nil }
        return state.waiter
      }
      waiter?.resume()
    }
  }

  /// Returns once rung, after `timeout`, or on cancellation, whichever comes first.
  public func wait(timeout: Duration) async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await self.wait() }
      group.addTask { try? await Task.sleep(for: timeout) }
      await group.next()
      group.cancelAll()
    }
  }
}
