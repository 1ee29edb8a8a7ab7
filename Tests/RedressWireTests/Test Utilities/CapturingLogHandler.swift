import Logging
import Synchronization

/// One record a ``CapturingLogHandler`` captured.
struct CapturedLogRecord: Sendable, CustomStringConvertible {
  var level: Logger.Level
  var message: String
  /// The logger's and the call's metadata, rendered as text.
  var metadata: [String: String]

  /// The message and every metadata value, for "does this record name X" checks.
  var text: String {
    ([self.message] + self.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
  }

  var description: String { "[\(self.level)] \(self.text)" }
}

/// The records of every ``CapturingLogHandler`` made from it, in the order they were logged.
///
/// Logging happens on event loops while a test runs elsewhere, so a test waits for the record it
/// expects with ``first(where:)`` (bounded by ``withTimeout(_:_:_:)``) instead of reading once.
final class CapturedLogs: Sendable {
  private struct Waiter {
    var predicate: @Sendable (CapturedLogRecord) -> Bool
    var continuation: CheckedContinuation<CapturedLogRecord, any Error>
  }

  private struct State {
    var records: [CapturedLogRecord] = []
    var waiters: [UInt64: Waiter] = [:]
    var nextWaiterID: UInt64 = 0
  }

  private let state = Mutex(State())

  /// Everything captured so far.
  var records: [CapturedLogRecord] {
    self.state.withLock { $0.records }
  }

  /// A logger at `.trace` that captures into these records.
  func logger(label: String) -> Logger {
    Logger(label: label) { _ in CapturingLogHandler(logs: self) }
  }

  func append(_ record: CapturedLogRecord) {
    let matched = self.state.withLock { state -> [Waiter] in
      state.records.append(record)
      let ids = state.waiters.filter { $0.value.predicate(record) }.map(\.key)
      return ids.compactMap { state.waiters.removeValue(forKey: $0) }
    }
    for waiter in matched { waiter.continuation.resume(returning: record) }
  }

  /// The first record, already captured or still to come, for which `predicate` holds.
  func first(where predicate: @escaping @Sendable (CapturedLogRecord) -> Bool) async throws -> CapturedLogRecord {
    let id = self.state.withLock { state -> UInt64 in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CapturedLogRecord, any Error>) in
        let ready = self.state.withLock { state -> Result<CapturedLogRecord, any Error>? in
          if let record = state.records.first(where: predicate) { return .success(record) }
          if Task.isCancelled { return .failure(CancellationError()) }
          state.waiters[id] = Waiter(predicate: predicate, continuation: continuation)
          return nil
        }
        if let ready { continuation.resume(with: ready) }
      }
    } onCancel: {
      let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
      waiter?.continuation.resume(throwing: CancellationError())
    }
  }
}

/// A swift-log handler that keeps every record in a ``CapturedLogs`` for tests to inspect.
struct CapturingLogHandler: LogHandler {
  let logs: CapturedLogs
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .trace

  init(logs: CapturedLogs) {
    self.logs = logs
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { self.metadata[key] }
    set { self.metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    var metadata = self.metadata
    if let extra = event.metadata {
      metadata.merge(extra) { _, new in new }
    }
    self.logs.append(
      CapturedLogRecord(
        level: event.level,
        message: event.message.description,
        metadata: metadata.mapValues { "\($0)" }
      )
    )
  }
}
