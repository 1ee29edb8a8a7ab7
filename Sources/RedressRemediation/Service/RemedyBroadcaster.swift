import RedressSchemas
import Synchronization

/// Tells in-process watchers about each committed change, in the order the store published them.
///
/// Each watcher gets a bounded buffer; one that falls further behind has its stream finished, and the watch
/// ends with `unavailable` so its client resumes from the last version it saw (nothing is lost: the store
/// keeps every change). After ``close()`` (graceful shutdown) every stream ends and no new one starts.
final class RemedyBroadcaster: Sendable {
  private struct Subscriber {
    var remedyID: String
    var continuation: AsyncStream<Redress_V1_RemedyChange>.Continuation
  }

  private struct State {
    var subscribers: [Int: Subscriber] = [:]
    var nextID = 0
    var closed = false
    /// Waiting in ``waitUntilIdle()`` for the last watcher to leave.
    var idleWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextWaiter = 0

    mutating func takeIdleWaiters() -> [CheckedContinuation<Void, Never>] {
      guard self.subscribers.isEmpty else { return [] }
      defer { self.idleWaiters = [:] }
      return Array(self.idleWaiters.values)
    }
  }

  private let state = Mutex(State())
  private let bufferLimit: Int

  init(bufferLimit: Int) {
    self.bufferLimit = max(1, bufferLimit)
  }

  /// A stream of the changes to `remedyID` published from now on, and the id to unsubscribe with.
  func subscribe(remedyID: String) -> (id: Int, changes: AsyncStream<Redress_V1_RemedyChange>) {
    let (stream, continuation) = AsyncStream.makeStream(
      of: Redress_V1_RemedyChange.self,
      bufferingPolicy: .bufferingOldest(self.bufferLimit)
    )
    let id: Int? = self.state.withLock { state in
      guard !state.closed else { return nil }
      let id = state.nextID
      state.nextID += 1
      state.subscribers[id] = Subscriber(remedyID: remedyID, continuation: continuation)
      return id
    }
    if id == nil { continuation.finish() }
    return (id ?? -1, stream)
  }

  func unsubscribe(_ id: Int) {
    let (removed, idle) = self.state.withLock { state in
      let removed = state.subscribers.removeValue(forKey: id)
      return (removed, state.takeIdleWaiters())
    }
    removed?.continuation.finish()
    for waiter in idle { waiter.resume() }
  }

  /// Hands `change` to every watcher of its remedy; a watcher whose buffer is full is ended.
  func publish(_ change: Redress_V1_RemedyChange) {
    let (overflowed, idle) = self.state.withLock { state in
      var overflowed: [Subscriber] = []
      for (id, subscriber) in state.subscribers where subscriber.remedyID == change.remedy.id {
        if case .dropped = subscriber.continuation.yield(change) {
          overflowed.append(subscriber)
          state.subscribers.removeValue(forKey: id)
        }
      }
      return (overflowed, overflowed.isEmpty ? [] : state.takeIdleWaiters())
    }
    for subscriber in overflowed { subscriber.continuation.finish() }
    for waiter in idle { waiter.resume() }
  }

  /// Ends every stream and refuses new ones.
  func close() {
    let (subscribers, idle) = self.state.withLock { state in
      state.closed = true
      let subscribers = Array(state.subscribers.values)
      state.subscribers = [:]
      return (subscribers, state.takeIdleWaiters())
    }
    for subscriber in subscribers { subscriber.continuation.finish() }
    for waiter in idle { waiter.resume() }
  }

  /// How many watchers are subscribed.
  var subscriberCount: Int {
    self.state.withLock { $0.subscribers.count }
  }

  /// Returns once no watcher is subscribed (at once if none is), or when the task is cancelled; for tests
  /// that check a watch ended.
  func waitUntilIdle() async {
    let id = self.state.withLock { state -> Int in
      defer { state.nextWaiter += 1 }
      return state.nextWaiter
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let resumeNow = self.state.withLock { state -> Bool in
          if state.subscribers.isEmpty || Task.isCancelled { return true }
          state.idleWaiters[id] = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      let waiter = self.state.withLock { $0.idleWaiters.removeValue(forKey: id) }
      waiter?.resume()
    }
  }
}
