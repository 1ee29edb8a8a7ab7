public import GRPCCore
import Synchronization

/// Set when the server that runs the current RPC begins graceful shutdown.
///
/// grpc-swift-2 never cancels a handler's task: it signals cancellation through `context.cancellation`, and
/// graceful shutdown waits for every in-flight RPC. A long-lived stream (a watch) must therefore end by itself
/// when its client goes away or the server shuts down, or it would hold the server open forever; see
/// ``withStreamLifetime(context:_:)``.
public final class ShutdownSignal: Sendable {
  /// The signal of the server running the current RPC.
  @TaskLocal public static var current: ShutdownSignal?

  private struct State {
    var triggered = false
    var nextWaiter = 0
    var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
  }

  private let state = Mutex(State())

  public init() {}

  public var isTriggered: Bool { self.state.withLock { $0.triggered } }

  /// Wakes every waiter, now and later.
  public func trigger() {
    let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
      guard !state.triggered else { return [] }
      state.triggered = true
      defer { state.waiters = [:] }
      return Array(state.waiters.values)
    }
    for waiter in waiters {
      waiter.resume()
    }
  }

  /// Returns once the signal is triggered (at once if it already was), or when the task is cancelled.
  public func wait() async {
    let id = self.state.withLock { state -> Int in
      defer { state.nextWaiter += 1 }
      return state.nextWaiter
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let resumeNow = self.state.withLock { state -> Bool in
          if state.triggered || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
      waiter?.resume()
    }
  }
}

/// Runs a long-lived streaming `body` until it returns, its RPC is cancelled (the client went away or its
/// deadline passed), or the server begins graceful shutdown. Then `body`'s task is cancelled and the call ends
/// with `deadlineExceeded` if its deadline (``RPCDeadline``) passed, else with `unavailable`, telling the
/// client to reconnect (and resume, for a watch).
public func withStreamLifetime(
  context: ServerContext,
  _ body: @escaping @Sendable () async throws -> Void
) async throws {
  let shutdown = ShutdownSignal.current
  let ended: Bool = try await withThrowingTaskGroup(of: Bool.self) { group in
    group.addTask {
      try await body()
      return false
    }
    group.addTask {
      await withTaskGroup(of: Void.self) { either in
        either.addTask { try? await context.cancellation.cancelled }
        if let shutdown {
          either.addTask { await shutdown.wait() }
        }
        await either.next()
        either.cancelAll()
      }
      return true
    }
    let first = try await group.next() ?? false
    group.cancelAll()
    return first
  }
  if ended {
    if RPCDeadline.hasPassed {
      throw RPCError(code: .deadlineExceeded, message: "The call's deadline passed; call again with a later deadline to resume.")
    }
    throw RPCError(code: .unavailable, message: "The stream ended because the call was cancelled or the server is shutting down; reconnect to resume.")
  }
}
