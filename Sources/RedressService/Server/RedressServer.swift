public import GRPCCore
public import Logging
public import NIOCore
public import RedressWire
public import ServiceLifecycle

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

    /// Listens on `host:port` (port 0 picks a free one) with the wire's default limits.
    public init(host: String, port: Int, security: ServerSecurity, connection: ConnectionConfig = .defaults) {
      self.host = host
      self.port = port
      self.security = security
      self.connection = connection
    }
  }

  /// The health service this server answers `grpc.health.v1.Health` with.
  public let health: HealthService
  /// Triggered when graceful shutdown begins; long-lived streams end on it (``withStreamLifetime(context:_:)``).
  public let shutdown = ShutdownSignal()
  private let transport: WireServerTransport
  private let server: GRPCServer<WireServerTransport>
  private let logger: Logger

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
    logger: Logger
  ) {
    self.health = HealthService()
    self.logger = logger
    self.transport = WireServerTransport(
      host: config.host,
      port: config.port,
      config: .init(security: config.security, connection: config.connection),
      logger: logger
    )
    let authentication = AuthenticationInterceptor(
      directory: directory,
      rateLimiter: rateLimiter,
      serviceRateLimiter: rateLimiter == nil ? nil : serviceRateLimiter,
      logger: logger
    )
    self.server = GRPCServer(
      transport: self.transport,
      services: services + [self.health],
      interceptors: [RequestDecodingInterceptor(), authentication] + interceptors
    )
  }

  /// The address the server listens on once it does.
  public var listeningAddress: SocketAddress {
    get async throws { try await self.transport.listeningAddress }
  }

  public func run() async throws {
    try await withGracefulShutdownHandler {
      self.health.setStatus(.serving)
      try await ShutdownSignal.$current.withValue(self.shutdown) {
        try await self.server.serve()
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
  }
}
