public import GRPCCore
public import Tracing

/// Carries trace context in gRPC metadata (with swift-otel's tracer: W3C `traceparent` and `tracestate`).
public struct MetadataCarrier: Extractor, Injector {
  public init() {}

  public func extract(key: String, from carrier: Metadata) -> String? {
    carrier[stringValues: key].first { _ in true }
  }

  public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
    carrier.replaceOrAddString(value, forKey: key)
  }
}

/// A client span per RPC, child of the task's context, injected into the request's metadata so the server's
/// span joins the trace.
public struct ClientTracingInterceptor: ClientInterceptor {
  let tracer: any Tracer

  public init(tracer: any Tracer) {
    self.tracer = tracer
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingClientRequest<Input>,
    context: ClientContext,
    next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
  ) async throws -> StreamingClientResponse<Output> {
    let parent = ServiceContext.current ?? .topLevel
    let span = self.tracer.startSpan(context.descriptor.fullyQualifiedMethod, context: parent, ofKind: .client)
    defer { span.end() }
    span.attributes["rpc.system"] = "grpc"
    span.attributes["rpc.method"] = context.descriptor.method
    var request = request
    self.tracer.inject(span.context, into: &request.metadata, using: MetadataCarrier())
    do {
      let response = try await next(request, context)
      if case .failure(let error) = response.accepted { RPCSpan.record(error, on: span) }
      return response
    } catch {
      RPCSpan.record(error, on: span)
      throw error
    }
  }
}

/// What an RPC's span records about how it ended.
public enum RPCSpan {
  /// Marks `span` failed with the RPC's status code.
  public static func record(_ error: any Error, on span: any Span) {
    let code = (error as? RPCError)?.code ?? .unknown
    span.attributes["rpc.grpc.status_code"] = code.rawValue
    span.setStatus(SpanStatus(code: .error, message: "\(code)"))
  }
}

/// Trace context in a `[String: String]` (stored contexts, HTTP headers).
public struct DictionaryCarrier: Extractor, Injector {
  public init() {}

  public func extract(key: String, from carrier: [String: String]) -> String? {
    carrier[key]
  }

  public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
    carrier[key] = value
  }
}
