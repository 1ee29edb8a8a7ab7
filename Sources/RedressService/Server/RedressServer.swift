public import GRPCCore
public import Logging
public import NIOCore
public import RedressWire
public import ServiceLifecycle
public import Tracing
public import GRPCNIOTransportHTTP2

/// One Redress service on the wire: a gRPC server over ``WireServerTransport`` with authentication, rate
/// limiting and health, run as a swift-service-lifecycle `Service`.
///
/// On graceful shutdown (SIGTERM/SIGINT through the service group) it turns health to `notServing`, stops
/// accepting connections and calls, lets in-flight calls finish, then returns, so the owner can close its
/// store afterwards.
public final class RedressServer: Service, Sendable {
  /// Where and how to listen.
  public struct Config: Sendable {
    /// Address to listen on.
    public var host: String
    /// Port (0: any free port; see ``RedressServer/listeningAddress``).
    public var port: Int
    /// TLS, or plaintext for tests.
    public var security: ServerSecurity
    /// Wire limits and timers.
    public var connection: ConnectionConfig
    /// Limits over all connections (connection caps, buffered bytes).
    public var limits: WireServerTransport.Limits
    /// How long graceful shutdown lets in-flight calls run before it closes what is left. Long-lived streams
    /// (watches) end at once when shutdown begins; this bounds the rest.
    public var shutdownGracePeriod: Duration
    /// Standard gRPC over HTTP/2 as well, for clients without the Redress wire; `nil` (the default): off.
    public var grpcHTTP2: GRPCHTTP2Listener?
    /// `GET /metrics` over HTTPS on a port of its own (``MetricsEndpoint``); `nil` (the default): off.
    public var metrics: MetricsListener?

    /// Listens on `host:port` (port 0 picks a free one) with the wire's default limits and a 10 s grace period.
    public init(
      host: String,
      port: Int,
      security: ServerSecurity,
      connection: ConnectionConfig = .defaults,
      limits: WireServerTransport.Limits = .defaults,
      shutdownGracePeriod: Duration = .seconds(10),
      grpcHTTP2: GRPCHTTP2Listener? = nil,
      metrics: MetricsListener? = nil
    ) {
      self.host = host
      self.port = port
      self.security = security
      self.connection = connection
      self.limits = limits
      self.shutdownGracePeriod = shutdownGracePeriod
      self.grpcHTTP2 = grpcHTTP2
      self.metrics = metrics
    }
  }

  /// The health service this server answers `grpc.health.v1.Health` with.
  public let health: HealthService
  /// Triggered when graceful shutdown begins; long-lived streams end on it (``withStreamLifetime(context:_:)``).
  public let shutdown = ShutdownSignal()
  /// This server's metrics (every RPC is counted here; the services add their own), exported by ``metricsEndpoint``.
  public let metrics: RedressMetrics
  /// Serves ``metrics`` when the configuration asks for it.
  public let metricsEndpoint: MetricsEndpoint?
  private let transport: WireServerTransport
  private let server: GRPCServer<WireServerTransport>
  /// The same services on standard gRPC over HTTP/2, when configured.
  private let http2: (transport: HTTP2ServerTransport.Posix, server: GRPCServer<HTTP2ServerTransport.Posix>)?
  private let logger: Logger
  private let gracePeriod: Duration

  /// - Parameters:
  ///   - config: Address and TLS.
  ///   - services: The RPC services to offer (health is added).
  ///   - directory: Who may call.
  ///   - rateLimiter: Per-identity rate limits, or `nil` (then service identities are not limited either).
  ///   - serviceRateLimiter: Per-identity limits for identities with the `service` role.
  ///   - interceptors: Further interceptors, run after authentication.
  public init(
    config: Config,
    services: [any RegistrableRPCService],
    directory: IdentityDirectory,
    rateLimiter: RateLimiter?,
    serviceRateLimiter: RateLimiter? = RateLimiter(config: .serviceDefaults),
    interceptors: [any ServerInterceptor] = [],
    metrics: RedressMetrics = RedressMetrics(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) throws {
    self.health = HealthService()
    self.metrics = metrics
    self.metricsEndpoint = config.metrics.map {
      MetricsEndpoint(listener: $0, security: config.security, directory: directory, metrics: metrics, logger: logger)
    }
    self.logger = logger
    self.gracePeriod = config.shutdownGracePeriod
    self.transport = WireServerTransport(
      host: config.host,
      port: config.port,
      config: .init(
        security: config.security, connection: config.connection, limits: config.limits,
        observer: WireMetrics(metrics: metrics)),
      logger: logger
    )
    let authentication = AuthenticationInterceptor(
      directory: directory,
      rateLimiter: rateLimiter,
      serviceRateLimiter: rateLimiter == nil ? nil : serviceRateLimiter,
      logger: logger
    )
    // With tracing off (a no-op tracer) there is nothing to extract or record: no span interceptor at all, so an
    // untraced server pays nothing per call for it.
    let tracing: [any ServerInterceptor] = tracer is NoOpTracer ? [] : [ServerTracingInterceptor(tracer: tracer)]
    let allInterceptors: [any ServerInterceptor] =
      [RequestIDInterceptor()] + tracing
      + [
        MetricsInterceptor(metrics: metrics), DeadlineInterceptor(), RequestDecodingInterceptor(), authentication,
      ] + interceptors
    self.server = GRPCServer(transport: self.transport, services: services + [self.health], interceptors: allInterceptors)
    if let listener = config.grpcHTTP2 {
      // The same service and interceptor instances: one rate limit and one failed-authentication limit per
      // identity and address, whichever listener a call arrives on.
      let transport = try listener.makeTransport(config: config, logger: logger)
      self.http2 = (transport, GRPCServer(transport: transport, services: services + [self.health], interceptors: allInterceptors))
    } else {
      self.http2 = nil
    }
  }

  /// The address the server listens on once it does.
  public var listeningAddress: NIOCore.SocketAddress {
    get async throws { try await self.transport.listeningAddress }
  }

  /// The address the gRPC HTTP/2 listener listens on once it does; `nil` when it is off.
  public var grpcHTTP2Port: Int? {
    get async throws {
      guard let http2 = self.http2 else { return nil }
      return try await http2.transport.listeningAddress.ipv4?.port
    }
  }

  /// The port the metrics endpoint listens on once it does; `nil` when it is off.
  public var metricsPort: Int? {
    get async throws {
      guard let endpoint = self.metricsEndpoint else { return nil }
      return try await endpoint.port
    }
  }

  public func run() async throws {
    try await withGracefulShutdownHandler {
      self.health.setStatus(.serving)
      try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
          try await ShutdownSignal.$current.withValue(self.shutdown) {
            try await withThrowingDiscardingTaskGroup { servers in
              servers.addTask { try await self.server.serve() }
              if let http2 = self.http2 {
                servers.addTask { try await http2.server.serve() }
              }
              if let endpoint = self.metricsEndpoint {
                // Ends on graceful shutdown like the rest (it runs a service group that inherits it).
                servers.addTask { try await endpoint.run() }
              }
            }
          }
          return true
        }
        // The grace period: once shutdown has begun, calls get this long to finish, then the rest are closed
        // (cancelling `serve()` closes every connection) and the server still returns normally.
        group.addTask {
          await self.shutdown.wait()
          // Cancelled (serve returned first) or elapsed: either way this task's answer is "not served".
          try? await Task.sleep(for: self.gracePeriod)
          return false
        }
        let served = try await group.next() ?? true
        group.cancelAll()
        if !served {
          self.logger.warning(
            "graceful shutdown: calls still running after the grace period; closing them",
            metadata: ["grace_period": "\(self.gracePeriod)"]
          )
          // `serve()` ends once its calls see the cancellation; what it throws then is the closing itself.
          while let _ = try? await group.next() {}
        } else {
          while let _ = try await group.next() {}
        }
      }
    } onGracefulShutdown: {
      self.beginGracefulShutdown()
    }
  }

  /// Begins graceful shutdown without a signal (tests, embedding).
  public func beginGracefulShutdown() {
    self.logger.info("graceful shutdown: draining calls")
    self.health.setStatus(.notServing)
    self.shutdown.trigger()
    self.server.beginGracefulShutdown()
    self.http2?.server.beginGracefulShutdown()
  }
}
