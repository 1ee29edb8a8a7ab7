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

  private enum State {
    case open(subscribers: [Int: Subscriber], nextID: Int)
    case closed
  }

  private let state = Mutex(State.open(subscribers: [:], nextID: 0))
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
      switch state {
      case .open(var subscribers, let nextID):
        subscribers[nextID] = Subscriber(remedyID: remedyID, continuation: continuation)
        state = .open(subscribers: subscribers, nextID: nextID + 1)
        return nextID
      case .closed:
        return nil
      }
    }
    if id == nil { continuation.finish() }
    return (id ?? -1, stream)
  }

  func unsubscribe(_ id: Int) {
    let removed: Subscriber? = self.state.withLock { state in
      guard case .open(var subscribers, let nextID) = state else { return nil }
      let removed = subscribers.removeValue(forKey: id)
      state = .open(subscribers: subscribers, nextID: nextID)
      return removed
    }
    removed?.continuation.finish()
  }

  /// Hands `change` to every watcher of its remedy; a watcher whose buffer is full is ended.
  func publish(_ change: Redress_V1_RemedyChange) {
    let overflowed: [Subscriber] = self.state.withLock { state in
      guard case .open(var subscribers, let nextID) = state else { return [] }
      var overflowed: [Subscriber] = []
      for (id, subscriber) in subscribers where subscriber.remedyID == change.remedy.id {
        if case .dropped = subscriber.continuation.yield(change) {
          overflowed.append(subscriber)
          subscribers.removeValue(forKey: id)
        }
      }
      state = .open(subscribers: subscribers, nextID: nextID)
      return overflowed
    }
    for subscriber in overflowed { subscriber.continuation.finish() }
  }

  /// Ends every stream and refuses new ones.
  func close() {
    let subscribers: [Subscriber] = self.state.withLock { state in
      guard case .open(let subscribers, _) = state else { return [] }
      state = .closed
      return Array(subscribers.values)
    }
    for subscriber in subscribers { subscriber.continuation.finish() }
  }
}
