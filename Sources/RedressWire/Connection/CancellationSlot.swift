import GRPCCore
import Synchronization

/// Connects a server stream to the RPC cancellation handle GRPCCore gives its handler, which
/// exists only once the handler's task starts; a reset that arrives first is remembered.
final class CancellationSlot: Sendable {
  private struct State {
    var handle: ServerContext.RPCCancellationHandle?
    var cancelled = false
  }

  private let state = Mutex(State())

  init() {}

  /// Attaches the handle; cancels it at once if the stream was already cancelled.
  func attach(_ handle: ServerContext.RPCCancellationHandle) {
    let cancelNow = self.state.withLock { state -> Bool in
      state.handle = handle
      return state.cancelled
    }
    if cancelNow { handle.cancel() }
  }

  /// Cancels the RPC (peer reset, connection lost, deadline on the wire).
  func cancel() {
    let handle = self.state.withLock { state -> ServerContext.RPCCancellationHandle? in
      state.cancelled = true
      return state.handle
    }
    handle?.cancel()
  }
}
