import GRPCCore

/// Reports, without any sleeping or polling, that a server handler saw its RPC cancelled.
///
/// Hand one to ``InteropTestService`` and wait on ``cancellations`` (or ``nextCancellation()``) after
/// cancelling an RPC from the client: the wait ends once the handler itself observed the cancellation.
final class CancellationProbe: Sendable {
  /// One cancellation a handler observed.
  struct Event: Sendable, Hashable {
    /// How the handler learned of the cancellation.
    enum Source: Sendable, Hashable {
      /// The RPC's `ServerContext.RPCCancellationHandle` fired (peer cancel, deadline, or server shutdown).
      case rpcCancellationHandle
      /// The handler's task was cancelled while the RPC's cancellation handle had not fired.
      case taskCancellation
    }

    /// The method whose handler saw the cancellation.
    var method: MethodDescriptor
    /// How it saw it.
    var source: Source
  }

  /// Every cancellation observed, in order. One consumer at a time.
  let cancellations: AsyncStream<Event>
  private let continuation: AsyncStream<Event>.Continuation

  init() {
    (self.cancellations, self.continuation) = AsyncStream.makeStream()
  }

  deinit {
    self.continuation.finish()
  }

  /// Records that the handler for `method` saw its RPC cancelled.
  func record(_ method: MethodDescriptor, source: Event.Source) {
    self.continuation.yield(Event(method: method, source: source))
  }

  /// Waits for the next observed cancellation; returns nil only if the waiting task is cancelled.
  func nextCancellation() async -> Event? {
    var iterator = self.cancellations.makeAsyncIterator()
    return await iterator.next()
  }
}
