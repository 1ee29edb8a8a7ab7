import GRPCCore
import Synchronization

/// A server interceptor that records the `grpc-encoding` each call's request metadata carried.
final class EncodingRecorder: ServerInterceptor {
  private let encodings = Mutex<[String: [String]]>([:])

  init() {}

  /// The `grpc-encoding` values seen for a method (`"none"` for a call without one), in order.
  func encodings(for method: String) -> [String] {
    self.encodings.withLock { $0[method] ?? [] }
  }

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let encoding = request.metadata[stringValues: "grpc-encoding"].first(where: { _ in true }) ?? "none"
    self.encodings.withLock { $0[context.descriptor.method, default: []].append(encoding) }
    return try await next(request, context)
  }
}
