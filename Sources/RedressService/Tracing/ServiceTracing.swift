import OTel
public import ServiceLifecycle
public import Tracing

/// Where a service's spans go: nowhere (the default), or OTLP/HTTP to a collector through swift-otel.
///
/// The tracer is passed to the server, the clients and the stores explicitly rather than bootstrapped globally,
/// so two services in one process (`redress dev`, tests) keep their own.
public struct ServiceTracing: Sendable {
  /// Starts the spans.
  public let tracer: any Tracer
  /// Exports them in batches; run it with the service (it flushes on shutdown). `nil` when tracing is off.
  public let exporter: (any Service)?

  public init(tracer: any Tracer, exporter: (any Service)?) {
    self.tracer = tracer
    self.exporter = exporter
  }

  /// No spans; context still flows (a no-op tracer injects nothing).
  public static let off = ServiceTracing(tracer: NoOpTracer(), exporter: nil)

  /// Spans exported over OTLP/HTTP (protobuf) to `endpoint`, named for `serviceName`, propagated as W3C trace
  /// context; every trace is sampled (a collector samples further if it wants).
  public static func otlp(endpoint: String, serviceName: String) throws -> ServiceTracing {
    var configuration = OTel.Configuration.default
    configuration.serviceName = serviceName
    configuration.logs.enabled = false
    configuration.metrics.enabled = false
    configuration.propagators = [.traceContext]
    // A signal-specific endpoint is used as given (the OTLP convention), so name the traces path here: the
    // collector's base URL is what operators configure.
    let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
    configuration.traces.otlpExporter.endpoint = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
    configuration.traces.otlpExporter.protocol = .httpProtobuf
    let backend = try OTel.makeTracingBackend(configuration: configuration)
    return ServiceTracing(tracer: backend.factory, exporter: backend.service)
  }

  /// ``otlp(endpoint:serviceName:)`` when `endpoint` is set, else ``off``.
  public static func from(endpoint: String?, serviceName: String) throws -> ServiceTracing {
    guard let endpoint else { return .off }
    return try .otlp(endpoint: endpoint, serviceName: serviceName)
  }
}
