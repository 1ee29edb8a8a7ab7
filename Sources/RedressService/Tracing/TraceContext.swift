public import Foundation
public import Logging
import RedressTracing
public import Tracing

/// The trace id of the RPC the current task serves, on every log line written while serving it (as
/// `trace_id`), when the tracer speaks W3C trace context (swift-otel's does).
public enum TraceID {
  @TaskLocal public static var current: String?

  /// Adds `trace_id` to the log lines of a traced request (``ServiceRunner/bootstrapLogging(level:format:)``).
  public static let metadataProvider = Logger.MetadataProvider {
    guard let id = TraceID.current else { return [:] }
    return ["trace_id": .string(id)]
  }

  /// The W3C trace id of `context` (the `traceparent` the tracer would send), or `nil`.
  public static func of(_ context: ServiceContext, _ tracer: any Tracer) -> String? {
    var carrier: [String: String] = [:]
    tracer.inject(context, into: &carrier, using: DictionaryCarrier())
    return carrier["traceparent"].flatMap(Self.traceID(fromTraceparent:))
  }

  /// `00-<32 hex trace id>-<16 hex span id>-<flags>` → the trace id.
  public static func traceID(fromTraceparent value: String) -> String? {
    let parts = value.split(separator: "-")
    guard parts.count == 4, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit) else { return nil }
    return String(parts[1])
  }
}

/// A trace context kept with a row that outlives the request (intake's outbox, a webhook delivery), so the work
/// that row causes later joins the request's trace: the tracer's own carrier as JSON (with swift-otel,
/// `{"traceparent": …, "tracestate": …}`).
public enum StoredTraceContext {
  /// The current task's context as stored text; `nil` when the tracer injects nothing (no tracing).
  public static func current(_ tracer: any Tracer) -> String? {
    guard let context = ServiceContext.current else { return nil }
    var carrier: [String: String] = [:]
    tracer.inject(context, into: &carrier, using: DictionaryCarrier())
    guard !carrier.isEmpty, let data = try? JSONEncoder().encode(carrier) else { return nil }
    return String(decoding: data, as: UTF8.self)
  }

  /// The context stored as `text` (a top-level one when there is none or it does not parse).
  public static func context(from text: String?, _ tracer: any Tracer) -> ServiceContext {
    var context = ServiceContext.topLevel
    guard let text, let carrier = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
      return context
    }
    tracer.extract(carrier, into: &context, using: DictionaryCarrier())
    return context
  }
}
