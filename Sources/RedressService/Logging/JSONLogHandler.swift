public import Foundation
public import Logging
import Synchronization

/// How a Redress executable writes its logs to standard error (`log.format`, `--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
  /// swift-log's `StreamLogHandler`: `2026-12-03T05:00:00+0000 info redress.intake: key=value [Module] message`.
  case text
  /// One JSON object per line (``JSONLogHandler``), for log pipelines.
  case json
}

/// Writes one JSON object per line: `time` (ISO 8601, UTC, milliseconds), `level`, `logger` (the label),
/// `message`, `source` (the module), `error` when the event carries one, then every metadata key (the handler's,
/// the metadata provider's — `request_id` — and the call's) at the top level. A metadata key that is one of those
/// names is written as `metadata.<key>` instead. Values: strings as strings, `stringConvertible` as its
/// description, arrays and dictionaries as JSON.
///
/// Written here because swift-log ships only a plain-text handler and no served package offers a JSON one.
public struct JSONLogHandler: LogHandler {
  public var logLevel: Logger.Level = .info
  public var metadata: Logger.Metadata = [:]
  public var metadataProvider: Logger.MetadataProvider?
  private let label: String
  private let write: @Sendable (String) -> Void

  static let reserved: Set<String> = ["time", "level", "logger", "message", "source", "error"]

  /// A handler for `label` writing each line (newline included) with `write`.
  public init(
    label: String,
    metadataProvider: Logger.MetadataProvider? = nil,
    write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError
  ) {
    self.label = label
    self.metadataProvider = metadataProvider
    self.write = write
  }

  /// Writes `line` to standard error in one `write(2)`, lines from several threads never interleaved.
  public static let standardError: @Sendable (String) -> Void = { line in
    standardErrorLock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
  }

  private static let standardErrorLock = Mutex(())

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { self.metadata[key] }
    set { self.metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var merged = self.metadata
    if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
    if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
    var object: [String: Any] = [
      "time": Self.timestamp(Date()),
      "level": event.level.rawValue,
      "logger": self.label,
      "message": event.message.description,
      "source": event.source,
    ]
    if let error = event.error { object["error"] = "\(error)" }
    for (key, value) in merged {
      object[Self.reserved.contains(key) ? "metadata.\(key)" : key] = Self.json(value)
    }
    guard
      let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return }
    self.write(String(decoding: data, as: UTF8.self) + "\n")
  }

  static func json(_ value: Logger.Metadata.Value) -> Any {
    switch value {
    case .string(let string): string
    case .stringConvertible(let convertible): convertible.description
    case .array(let values): values.map(Self.json)
    case .dictionary(let dictionary): dictionary.mapValues(Self.json)
    }
  }

  static func timestamp(_ date: Date) -> String {
    date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
  }
}
