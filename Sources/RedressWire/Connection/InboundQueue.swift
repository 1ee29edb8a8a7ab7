import GRPCCore
import NIOCore
import Synchronization

/// The parts one stream received, waiting for the one GRPCCore task that reads them.
///
/// Filled on the event loop, drained by an async task. Reading a message reports its
/// flow-control credit back through `onConsume`, so a slow reader stops the sender instead of
/// growing this queue (docs/PROTOCOL.md, flow control).
final class InboundQueue<Part: Sendable>: AsyncSequence, Sendable {
  typealias Element = Part

  private struct Entry {
    var part: Part
    /// Flow-control credit to return when read; `nil` for parts that are not messages.
    var credit: Int?
    /// Octets reserved in the connection's ``InboundBudget`` for this part, released when it is read or dropped.
    var bytes: Int
  }

  private struct State {
    var buffer = CircularBuffer<Entry>()
    var waiter: CheckedContinuation<Part?, any Error>?
    /// `nil` while open; `.success` once finished (after the buffer drains); `.failure` at once.
    var terminal: Result<Void, any Error>?
    /// An error the reader gets once it has read what is already queued.
    var failureAfterBuffer: (any Error)?
  }

  private let state = Mutex(State())

  /// What a read ends with when its task is cancelled: GRPCCore reports the RPC as cancelled.
  private static var cancelled: RPCError {
    RPCError(code: .cancelled, message: "The RPC was cancelled.")
  }
  private let onConsume: @Sendable (Int) -> Void
  private let budget: InboundBudget?

  init(onConsume: @escaping @Sendable (Int) -> Void, budget: InboundBudget? = nil) {
    self.onConsume = onConsume
    self.budget = budget
  }

  deinit {
    // Parts nobody read (the stream was torn down under them) still give their octets back.
    let left = self.state.withLock { state in state.buffer.reduce(0) { $0 + $1.bytes } }
    self.budget?.release(left)
  }

  /// Whether the producer finished cleanly (``finish()``): every part is queued and no more come.
  var isFinished: Bool {
    self.state.withLock { state in
      if case .success = state.terminal { return true }
      return false
    }
  }

  /// Adds a part; `credit` is given back through `onConsume` when a message is read, and `bytes`
  /// (reserved by the connection) to the budget when it is read or dropped.
  func yield(_ part: Part, credit: Int?, bytes: Int = 0) {
    let waiter = self.state.withLock { state -> CheckedContinuation<Part?, any Error>? in
      guard state.terminal == nil, state.failureAfterBuffer == nil else {
        self.budget?.release(bytes)
        return nil
      }
      if let waiter = state.waiter {
        state.waiter = nil
        self.budget?.release(bytes)
        return waiter
      }
      state.buffer.append(Entry(part: part, credit: credit, bytes: bytes))
      return nil
    }
    if let waiter {
      if let credit { self.onConsume(credit) }
      waiter.resume(returning: part)
    }
  }

  /// Ends the sequence after the parts already queued.
  func finish() {
    let waiter = self.state.withLock { state -> CheckedContinuation<Part?, any Error>? in
      guard state.terminal == nil else { return nil }
      state.terminal = .success(())
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume(returning: nil)
  }

  /// Fails the sequence once the reader has read what is already queued; nothing more is added.
  func fail(afterQueued error: any Error) {
    let waiter = self.state.withLock { state -> CheckedContinuation<Part?, any Error>? in
      guard state.terminal == nil, state.failureAfterBuffer == nil else { return nil }
      if state.buffer.isEmpty {
        state.terminal = .failure(error)
        defer { state.waiter = nil }
        return state.waiter
      }
      state.failureAfterBuffer = error
      return nil
    }
    waiter?.resume(throwing: error)
  }

  /// Fails the sequence at once, dropping whatever was queued.
  func fail(_ error: any Error) {
    let waiter = self.state.withLock { state -> CheckedContinuation<Part?, any Error>? in
      if case .failure = state.terminal { return nil }
      state.terminal = .failure(error)
      self.budget?.release(state.buffer.reduce(0) { $0 + $1.bytes })
      state.buffer.removeAll()
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume(throwing: error)
  }

  private enum Poll {
    case part(Part, credit: Int?)
    case end
    case error(any Error)
    case wait
  }

  private func poll(_ state: inout State) -> Poll {
    if case .failure(let error) = state.terminal { return .error(error) }
    if let entry = state.buffer.popFirst() {
      self.budget?.release(entry.bytes)
      // Once the producer finished cleanly the peer has closed its side: the connection drops any
      // credit for the stream (`creditStream` ignores remotely closed streams), so skip the hop to
      // the event loop that would only find that out. Saves one hop per unary RPC on each side.
      if case .success = state.terminal { return .part(entry.part, credit: nil) }
      return .part(entry.part, credit: entry.credit)
    }
    if let error = state.failureAfterBuffer {
      state.failureAfterBuffer = nil
      state.terminal = .failure(error)
      return .error(error)
    }
    if state.terminal != nil { return .end }
    return .wait
  }

  /// Reads every part already queued, without waiting, as a reader would (fuzzing and tests on an embedded
  /// event loop, where no other task can read).
  func drainQueued() {
    while true {
      switch self.state.withLock({ self.poll(&$0) }) {
      case .part(_, let credit):
        if let credit { self.onConsume(credit) }
      case .end, .error, .wait:
        return
      }
    }
  }

  func next() async throws -> Part? {
    // Fast path: a part is already here, no continuation needed.
    switch self.state.withLock({ self.poll(&$0) }) {
    case .part(let part, let credit):
      if let credit { self.onConsume(credit) }
      return part
    case .end:
      return nil
    case .error(let error):
      throw error
    case .wait:
      break
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Part?, any Error>) in
        let result = self.state.withLock { state -> Poll in
          let result = self.poll(&state)
          if case .wait = result {
            if Task.isCancelled {
              return .error(Self.cancelled)
            }
            state.waiter = continuation
          }
          return result
        }
        switch result {
        case .part(let part, let credit):
          if let credit { self.onConsume(credit) }
          continuation.resume(returning: part)
        case .end:
          continuation.resume(returning: nil)
        case .error(let error):
          continuation.resume(throwing: error)
        case .wait:
          break
        }
      }
    } onCancel: {
      let waiter = self.state.withLock { state -> CheckedContinuation<Part?, any Error>? in
        defer { state.waiter = nil }
        return state.waiter
      }
      waiter?.resume(throwing: Self.cancelled)
    }
  }

  struct AsyncIterator: AsyncIteratorProtocol {
    let queue: InboundQueue<Part>

    mutating func next() async throws -> Part? {
      try await self.queue.next()
    }
  }

  func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(queue: self)
  }
}

/// The server's inbound queue as a non-generic sequence, for GRPCCore's `RPCAsyncSequence`.
///
/// `RPCAsyncSequence` calls its source through a protocol witness. The witness of the generic
/// `InboundQueue<Part>` is the unspecialized generic code, which instantiates generic metadata at run
/// time on every read (0.5-1 % of the unary profile). This wrapper's witness is concrete, so the queue's
/// code it calls is specialized at compile time.
struct ServerInboundSequence: AsyncSequence, Sendable {
  typealias Element = RPCRequestPart<WireBytes>

  let queue: InboundQueue<Element>

  struct AsyncIterator: AsyncIteratorProtocol {
    let queue: InboundQueue<Element>

    mutating func next() async throws -> Element? {
      try await self.queue.next()
    }
  }

  func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(queue: self.queue)
  }
}

/// The client's inbound queue as a non-generic sequence; see ``ServerInboundSequence``.
struct ClientInboundSequence: AsyncSequence, Sendable {
  typealias Element = RPCResponsePart<WireBytes>

  let queue: InboundQueue<Element>

  struct AsyncIterator: AsyncIteratorProtocol {
    let queue: InboundQueue<Element>

    mutating func next() async throws -> Element? {
      try await self.queue.next()
    }
  }

  func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(queue: self.queue)
  }
}
