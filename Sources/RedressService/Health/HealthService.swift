public import GRPCCore
public import RedressSchemas
import Synchronization

/// grpc.health.v1: `Check` and `Watch` over the statuses this process sets.
///
/// The empty service name "" stands for the whole server. A service starts `serving` once its store is open
/// and turns `notServing` when graceful shutdown begins, so probes stop routing to it before it stops.
public final class HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol, Sendable {
  public typealias ServingStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

  private struct State {
    var statuses: [String: ServingStatus] = [:]
    var watchers: [Int: (service: String, continuation: AsyncStream<ServingStatus>.Continuation)] = [:]
    var nextWatcher = 0
  }

  private let state = Mutex(State())

  public init() {}

  /// The status of `service` ("" for the whole server), `nil` before one is set.
  public func status(forService service: String = "") -> ServingStatus? {
    self.state.withLock { $0.statuses[service] }
  }

  /// Sets the status of `service` ("" for the whole server) and tells every watcher of it.
  public func setStatus(_ status: ServingStatus, forService service: String = "") {
    self.state.withLock { state in
      state.statuses[service] = status
      for watcher in state.watchers.values where watcher.service == service {
        watcher.continuation.yield(status)
      }
    }
  }

  public func check(
    request: Grpc_Health_V1_HealthCheckRequest,
    context: ServerContext
  ) async throws -> Grpc_Health_V1_HealthCheckResponse {
    guard let status = self.state.withLock({ $0.statuses[request.service] }) else {
      throw RPCError(code: .notFound, message: "No health status for service '\(request.service)'.")
    }
    return .with { $0.status = status }
  }

  public func watch(
    request: Grpc_Health_V1_HealthCheckRequest,
    response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
    context: ServerContext
  ) async throws {
    let (stream, continuation) = AsyncStream.makeStream(of: ServingStatus.self, bufferingPolicy: .bufferingNewest(1))
    let id = self.state.withLock { state in
      let id = state.nextWatcher
      state.nextWatcher += 1
      state.watchers[id] = (request.service, continuation)
      continuation.yield(state.statuses[request.service] ?? .serviceUnknown)
      return id
    }
    defer { _ = self.state.withLock { $0.watchers.removeValue(forKey: id) } }
    // Like every long-lived stream: it ends when its client goes away, its deadline passes or the server
    // shuts down, so a watch can neither outlive its deadline nor hold a graceful shutdown open.
    try await withStreamLifetime(context: context) {
      try await withTaskCancellationHandler {
        for await status in stream {
          try await response.write(.with { $0.status = status })
        }
      } onCancel: {
        continuation.finish()
      }
    }
  }
}
