import Logging
import RedressTestSupport

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
  private let log = AwaitableLog<CapturedLogRecord>()

  /// Everything captured so far.
  var records: [CapturedLogRecord] { self.log.all }

  /// A logger at `.trace` that captures into these records.
  func logger(label: String) -> Logger {
    Logger(label: label) { _ in CapturingLogHandler(logs: self) }
  }

  func append(_ record: CapturedLogRecord) {
    self.log.append(record)
  }

  /// The first record, already captured or still to come, for which `predicate` holds.
  func first(where predicate: @escaping @Sendable (CapturedLogRecord) -> Bool) async throws -> CapturedLogRecord {
    try await self.log.first(where: predicate)
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
