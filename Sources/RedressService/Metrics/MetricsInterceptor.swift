public import GRPCCore

/// Counts every RPC a server answers and how long it took, by method and status code:
/// `redress_rpc_requests_total{method, code}` and `redress_rpc_duration_seconds{method, code}`.
///
/// First in the chain, so calls refused by authentication or rate limiting are counted too. For a streaming
/// response the time runs until the stream ends (a watch is as long as it was held). `method` is the
/// fully-qualified method (only registered methods reach an interceptor), `code` the gRPC status name (`ok`,
/// `invalidArgument`, …).
public struct MetricsInterceptor: ServerInterceptor {
  let metrics: RedressMetrics

  public init(metrics: RedressMetrics) {
    self.metrics = metrics
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let method = context.descriptor.fullyQualifiedMethod
    let started = ContinuousClock.now
    let metrics = self.metrics
    let record: @Sendable (String) -> Void = { code in
      let dimensions = [("method", method), ("code", code)]
      metrics.increment("redress_rpc_requests_total", dimensions)
      metrics.recordDuration("redress_rpc_duration_seconds", dimensions, ContinuousClock.now - started)
    }
    var response: StreamingServerResponse<Output>
    do {
      response = try await next(request, context)
    } catch {
      record(Self.code(of: error))
      throw error
    }
    switch response.accepted {
    case .failure(let error):
      record(Self.code(of: error))
    case .success(var contents):
      let producer = contents.producer
      contents.producer = { writer in
        do {
          let trailers = try await producer(writer)
          record("ok")
          return trailers
        } catch {
          record(Self.code(of: error))
          throw error
        }
      }
      response.accepted = .success(contents)
    }
    return response
  }

  static func code(of error: any Error) -> String {
    if let error = error as? RPCError { return "\(error.code)" }
    if let convertible = error as? any RPCErrorConvertible { return "\(convertible.rpcErrorCode)" }
    return "unknown"
  }
}
