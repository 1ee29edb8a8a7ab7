import GRPCCore
import Synchronization

/// A server interceptor that records which connections calls arrived on and how many ran at
/// once, and can hold calls back until a number of them run together.
///
/// The peer a call arrived from (`ipv4:127.0.0.1:PORT`) names its connection: a test checks that
/// calls shared one connection, or used as many as it opened.
final class ServerCallRecorder: ServerInterceptor {
  /// What the recorder saw.
  struct Summary: Sendable {
    /// Distinct client addresses, one per connection.
    var peers: Set<String>
    /// Calls that reached the interceptor.
    var calls: Int
    /// The most calls inside the interceptor at once.
    var maxInFlight: Int
  }

  private enum Gate {
    /// Calls pass straight through.
    case open
    /// Calls wait until `opensAt` are in flight together.
    case closed(opensAt: Int, waiters: [UInt64: CheckedContinuation<Void, any Error>])
  }

  private struct State {
    var peers: Set<String> = []
    var calls = 0
    var inFlight = 0
    var maxInFlight = 0
    var gate: Gate
    var nextWaiterID: UInt64 = 0
  }

  private let state: Mutex<State>

  /// A recorder; with `holdUntilInFlight`, every call waits until that many calls are inside the
  /// interceptor at once, which proves the server ran that many concurrently.
  init(holdUntilInFlight: Int? = nil) {
    if let count = holdUntilInFlight {
      self.state = Mutex(State(gate: .closed(opensAt: count, waiters: [:])))
    } else {
      self.state = Mutex(State(gate: .open))
    }
  }

  /// What the recorder saw so far.
  var summary: Summary {
    self.state.withLock { Summary(peers: $0.peers, calls: $0.calls, maxInFlight: $0.maxInFlight) }
  }

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let opened = self.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
      state.peers.insert(context.remotePeer)
      state.calls += 1
      state.inFlight += 1
      state.maxInFlight = max(state.maxInFlight, state.inFlight)
      guard case .closed(let opensAt, let waiters) = state.gate, state.inFlight >= opensAt else { return [] }
      state.gate = .open
      return Array(waiters.values)
    }
    for waiter in opened { waiter.resume() }
    defer { self.state.withLock { $0.inFlight -= 1 } }
    try await self.waitForGate()
    return try await next(request, context)
  }

  private func waitForGate() async throws {
    let id = self.state.withLock { state -> UInt64 in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let immediate = self.state.withLock { state -> Result<Void, any Error>? in
          guard case .closed(let opensAt, var waiters) = state.gate else { return .success(()) }
          if Task.isCancelled { return .failure(CancellationError()) }
          waiters[id] = continuation
          state.gate = .closed(opensAt: opensAt, waiters: waiters)
          return nil
        }
        if let immediate { continuation.resume(with: immediate) }
      }
    } onCancel: {
      let waiter = self.state.withLock { state -> CheckedContinuation<Void, any Error>? in
        guard case .closed(let opensAt, var waiters) = state.gate, let waiter = waiters.removeValue(forKey: id) else {
          return nil
        }
        state.gate = .closed(opensAt: opensAt, waiters: waiters)
        return waiter
      }
      waiter?.resume(throwing: CancellationError())
    }
  }
}
