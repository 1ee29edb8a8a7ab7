public import RedressSchemas
import GRPCCore
import Synchronization

/// The updates of one remedy: first a snapshot (unless resuming), then every change in order.
///
/// The sequence survives reconnects: when the connection drops, the client reconnects with backoff and asks
/// for the changes after the last version it delivered, so no change is missed or repeated.
public struct RemedyUpdates: AsyncSequence, Sendable {
  /// A snapshot or one change.
  public typealias Element = Redress_V1_RemedyUpdate

  let stream: AsyncThrowingStream<Redress_V1_RemedyUpdate, any Error>

  /// Iterates the updates; throws the error that ended the watch.
  public struct AsyncIterator: AsyncIteratorProtocol {
    var base: AsyncThrowingStream<Redress_V1_RemedyUpdate, any Error>.AsyncIterator

    /// The next update, or `nil` once the watch ends.
    public mutating func next() async throws -> Redress_V1_RemedyUpdate? {
      try await self.base.next()
    }
  }

  /// An iterator over the updates; iterate once.
  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(base: self.stream.makeAsyncIterator())
  }
}

extension Redress_V1_RemedyUpdate {
  /// The remedy version this update brings the watcher to.
  public var version: Int64 {
    switch self.kind {
    case .snapshot(let remedy): remedy.version
    case .change(let change): change.entry.version
    case .none: 0
    }
  }
}

extension RedressClient {
  /// Watches a remedy while `body` runs; returns what `body` returns.
  ///
  /// ```swift
  /// try await redress.watch(remedyID: id) { updates in
  ///   for try await update in updates { print(update.version) }
  /// }
  /// ```
  ///
  /// - Parameters:
  ///   - remedyID: The remedy.
  ///   - afterVersion: 0 to start with a snapshot; a version to get only the changes after it.
  ///   - body: Consumes the updates. Returning ends the watch.
  /// - Throws: What `body` throws, or the error that ended the watch (`notFound`, `permissionDenied`...);
  ///   connection failures are retried, not thrown.
  public func watch<Result: Sendable>(
    remedyID: String,
    afterVersion: Int64 = 0,
    _ body: (RemedyUpdates) async throws -> Result
  ) async throws -> Result {
    let (stream, continuation) = AsyncThrowingStream.makeStream(of: Redress_V1_RemedyUpdate.self)
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask {
        await self.pumpWatch(remedyID: remedyID, afterVersion: afterVersion, into: continuation)
      }
      defer { group.cancelAll() }
      return try await body(RemedyUpdates(stream: stream))
    }
  }

  private func pumpWatch(
    remedyID: String,
    afterVersion: Int64,
    into continuation: AsyncThrowingStream<Redress_V1_RemedyUpdate, any Error>.Continuation
  ) async {
    let progress = WatchProgress(lastVersion: afterVersion)
    var backoff = self.configuration.retry.initialBackoff
    while !Task.isCancelled {
      let request = Redress_V1_WatchRemedyRequest.with {
        $0.remedyID = remedyID
        $0.afterVersion = progress.lastVersion
      }
      do {
        try await self.remediation.watchRemedy(request, metadata: self.metadata) { response in
          for try await update in response.messages {
            // Deliver each version once, even if a resumed stream overlaps what was already delivered.
            if progress.advance(to: update.version) {
              continuation.yield(update)
            }
          }
        }
        // The server ended the stream (e.g. it is shutting down): resume from where we are.
      } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
        self.logger.debug("watch interrupted; resuming", metadata: ["after_version": "\(progress.lastVersion)"])
      } catch is CancellationError {
        break
      } catch {
        continuation.finish(throwing: error)
        return
      }
      if progress.takeDelivered() {
        backoff = self.configuration.retry.initialBackoff
      }
      do {
        try await Task.sleep(for: backoff * Double.random(in: 0.5...1))
      } catch {
        break
      }
      backoff = min(backoff * self.configuration.retry.multiplier, self.configuration.retry.maximumBackoff)
    }
    continuation.finish()
  }
}

/// The last version a watch delivered, shared between the call's response handler and the resume loop.
private final class WatchProgress: Sendable {
  private struct State {
    var lastVersion: Int64
    var deliveredSinceResume = false
  }

  private let state: Mutex<State>

  init(lastVersion: Int64) {
    self.state = Mutex(State(lastVersion: lastVersion))
  }

  var lastVersion: Int64 {
    self.state.withLock { $0.lastVersion }
  }

  /// Records `version` and says whether it is new. A snapshot from a watch started at 0 is always new.
  func advance(to version: Int64) -> Bool {
    self.state.withLock { state in
      guard version > state.lastVersion || (state.lastVersion == 0 && version == 0) else { return false }
      state.lastVersion = version
      state.deliveredSinceResume = true
      return true
    }
  }

  /// Whether anything was delivered since the last call; resets the backoff after a healthy stream.
  func takeDelivered() -> Bool {
    self.state.withLock { state in
      defer { state.deliveredSinceResume = false }
      return state.deliveredSinceResume
    }
  }
}
