public import Logging
public import PostgresNIO
import Synchronization

/// The database cannot be reached now (down, restarting, or every connection busy past the deadline); the
/// request can be retried.
public struct PostgresUnavailable: Error, CustomStringConvertible {
  public var reason: String
  public init(reason: String) { self.reason = reason }
  public var description: String { "the database is unavailable: \(self.reason)" }
}

extension PostgresClient {
  /// Runs `body` in a transaction on a pooled connection, failing with `PostgresUnavailable` after `deadline`;
  /// what `body` throws comes out as itself, after the rollback, rather than wrapped by postgres-nio.
  @discardableResult
  public func transaction<T: Sendable>(
    deadline: Duration,
    logger: Logger,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
  ) async throws -> T {
    try await withDatabaseDeadline(deadline) {
      do {
        return try await self.withTransaction(logger: logger) { connection in try await body(connection) }
      } catch let error as PostgresTransactionError {
        throw error.closureError ?? error.beginError ?? error.commitError ?? error
      }
    }
  }

  /// Runs `body` on a pooled connection (outside a transaction), failing with `PostgresUnavailable` after
  /// `deadline`.
  @discardableResult
  public func withConnection<T: Sendable>(
    deadline: Duration,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
  ) async throws -> T {
    try await withDatabaseDeadline(deadline) {
      try await self.withConnection { connection in try await body(connection) }
    }
  }
}

/// Runs `operation`, failing with `PostgresUnavailable` when it has not finished after `limit`, and with
/// `CancellationError` as soon as the calling task is cancelled — whether or not `operation` answers its own
/// cancellation at once.
///
/// postgres-nio's pool waits for a connection without bound while the server is down, and a query on a
/// connection whose peer vanished without a FIN waits for TCP to notice; an RPC (and a graceful shutdown) must
/// not wait with it. A task group would: it cannot return before every child has, so one uncooperative child
/// holds the caller. Here `operation` runs in a task of its own that is cancelled and left to finish by itself
/// (still holding its connection until it does) while the caller is answered. Written here because neither
/// the standard library nor a served package offers a deadline that does not wait for its operation.
@discardableResult
public func withDatabaseDeadline<T: Sendable>(
  _ limit: Duration,
  _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
  let outcome = FirstOutcome<T>()
  let work = Task {
    let result: Result<T, any Error>
    do { result = .success(try await operation()) } catch { result = .failure(error) }
    outcome.settle(result)
  }
  let timer = Task {
    try? await Task.sleep(for: limit)
    if Task.isCancelled { return }
    if outcome.settle(.failure(PostgresUnavailable(reason: "no answer from the database within \(limit)"))) {
      work.cancel()
    }
  }
  defer { timer.cancel() }
  return try await withTaskCancellationHandler {
    try await withCheckedThrowingContinuation { continuation in outcome.attach(continuation) }
  } onCancel: {
    work.cancel()
    outcome.settle(.failure(CancellationError()))
  }
}

/// The first of several racing outcomes, handed to a continuation that may be attached before or after it.
private final class FirstOutcome<T: Sendable>: Sendable {
  private enum State {
    case waiting
    case attached(CheckedContinuation<T, any Error>)
    case settled(Result<T, any Error>)
    case done
  }

  private let state = Mutex(State.waiting)

  /// Records `result` unless another outcome came first; whether it was the first.
  @discardableResult
  func settle(_ result: Result<T, any Error>) -> Bool {
    let (first, continuation) = self.state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?) in
      switch state {
      case .waiting:
        state = .settled(result)
        return (true, nil)
      case .attached(let continuation):
        state = .done
        return (true, continuation)
      case .settled, .done:
        return (false, nil)
      }
    }
    continuation?.resume(with: result)
    return first
  }

  func attach(_ continuation: CheckedContinuation<T, any Error>) {
    let settled: Result<T, any Error>? = self.state.withLock { state in
      switch state {
      case .waiting:
        state = .attached(continuation)
        return nil
      case .settled(let result):
        state = .done
        return result
      case .attached, .done:
        preconditionFailure("a continuation is attached once")
      }
    }
    if let settled { continuation.resume(with: settled) }
  }
}
