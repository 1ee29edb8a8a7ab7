public import GRPCCore
import RedressTracing
public import Tracing

/// A server span per RPC, child of the caller's context when its metadata carries one; binds the span's
/// context (and ``TraceID/current`` for the logs) for the handler and a streaming response's producer.
public struct ServerTracingInterceptor: ServerInterceptor {
  let tracer: any Tracer

  public init(tracer: any Tracer) {
    self.tracer = tracer
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    var parent = ServiceContext.current ?? .topLevel
    self.tracer.extract(request.metadata, into: &parent, using: MetadataCarrier())
    let method = context.descriptor.fullyQualifiedMethod
    let span = self.tracer.startSpan(method, context: parent, ofKind: .server)
    span.attributes["rpc.system"] = "grpc"
    span.attributes["rpc.service"] = context.descriptor.service.fullyQualifiedService
    span.attributes["rpc.method"] = context.descriptor.method
    if let id = RequestID.current { span.attributes["redress.request_id"] = id }
    let traceID = TraceID.of(span.context, self.tracer)
    do {
      var response = try await ServiceContext.withValue(span.context) {
        try await TraceID.$current.withValue(traceID) { try await next(request, context) }
      }
      switch response.accepted {
      case .success(var contents):
        // The span ends when the producer (the handler's answer, or the stream) finishes.
        let producer = contents.producer
        let spanContext = span.context
        contents.producer = { writer in
          do {
            let trailers = try await ServiceContext.withValue(spanContext) {
              try await TraceID.$current.withValue(traceID) { try await producer(writer) }
            }
            span.attributes["rpc.grpc.status_code"] = 0
            span.end()
            return trailers
          } catch {
            RPCSpan.record(error, on: span)
            span.end()
            throw error
          }
        }
        response.accepted = .success(contents)
      case .failure(let error):
        RPCSpan.record(error, on: span)
        span.end()
      }
      return response
    } catch {
      RPCSpan.record(error, on: span)
      span.end()
      throw error
    }
  }
}
