import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
public import RedressWire
public import ServiceLifecycle

/// Where a service serves its metrics (`metrics_port`); off unless configured.
public struct MetricsListener: Sendable {
  /// Address to listen on (the service's own host).
  public var host: String
  /// Port; 0 picks a free one.
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }
}

/// `GET /metrics` over HTTPS (Hummingbird): the service's ``RedressMetrics`` in Prometheus' text format, for a
/// scraper presenting the bearer token of an identity with the `metrics` role.
///
/// TLS with the service's own certificate (plaintext only when the service itself runs with
/// `plaintext_for_testing_only`); no client certificate is asked for. Answers: 200 with the exposition, 401 with
/// `WWW-Authenticate: Bearer` without a known token, 403 for an identity without the `metrics` role, 404 for any
/// other path. Bounds, before authentication: request headers at most 16 KiB in all and 100 fields, 16 connections
/// at once (more wait in the listen backlog), and a connection idle for 30 s is closed.
public struct MetricsEndpoint: Service {
  /// Most connections open at once.
  public static let maxConnections = 16
  /// An idle connection is closed after this long.
  public static let idleTimeout: TimeAmount = .seconds(30)

  let listener: MetricsListener
  let security: ServerSecurity
  let directory: IdentityDirectory
  let metrics: RedressMetrics
  let logger: Logger
  private let bound = PortLatch()

  public init(
    listener: MetricsListener,
    security: ServerSecurity,
    directory: IdentityDirectory,
    metrics: RedressMetrics,
    logger: Logger
  ) {
    self.listener = listener
    self.security = security
    self.directory = directory
    self.metrics = metrics
    self.logger = logger
  }

  /// The port it listens on, once it does.
  public var port: Int {
    get async throws { try await self.bound.value }
  }

  public func run() async throws {
    let router = Router()
    let directory = self.directory
    let metrics = self.metrics
    router.get("/metrics") { request, _ -> Response in
      await Self.respond(authorization: request.headers[.authorization], directory: directory, metrics: metrics)
    }
    let http1 = HTTP1Channel.Configuration(
      idleTimeout: Self.idleTimeout,
      httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 16 * 1024, maxHeaderFieldCount: 100)
    )
    let server: HTTPServerBuilder
    switch self.security {
    case .tls(let tls):
      var configuration = TLSConfiguration.makeServerConfiguration(
        certificateChain: tls.certificateChain.map { .certificate($0) },
        privateKey: .privateKey(tls.privateKey)
      )
      configuration.minimumTLSVersion = .tlsv12
      configuration.certificateVerification = .none
      server = try .tls(.http1(configuration: http1), tlsConfiguration: configuration)
    case .plaintextForTestingOnly:
      server = .http1(configuration: http1)
    }
    let bound = self.bound
    let app = Application(
      router: router,
      server: server,
      configuration: .init(
        address: .hostname(self.listener.host, port: self.listener.port),
        availableConnectionsDelegate: MaximumAvailableConnections(Self.maxConnections)
      ),
      onServerRunning: { channel in bound.set(channel.localAddress?.port ?? 0) },
      logger: self.logger
    )
    do {
      try await app.run()
      // Shut down before it ever listened: whoever waits for the port learns it never will.
      bound.fail(CancellationError())
    } catch {
      bound.fail(error)
      throw error
    }
  }

  static func respond(authorization: String?, directory: IdentityDirectory, metrics: RedressMetrics) async -> Response {
    guard let authorization, authorization.hasPrefix("Bearer "),
      let identity = directory.identity(bearerToken: String(authorization.dropFirst("Bearer ".count)))
    else {
      return Response(
        status: .unauthorized,
        headers: [.wwwAuthenticate: "Bearer", .contentType: "text/plain; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(string: "Send the bearer token of an identity with the metrics role.\n"))
      )
    }
    guard identity.roles.contains(.metrics) else {
      return Response(
        status: .forbidden,
        headers: [.contentType: "text/plain; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(string: "Identity '\(identity.name)' lacks the metrics role.\n"))
      )
    }
    await metrics.refresh()
    return Response(
      status: .ok,
      headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
      body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
    )
  }
}

/// The port the endpoint bound, kept as the wire's server transport keeps its address: a promise that callers
/// may await before or after it is known, failed if the endpoint is dropped without having listened.
private final class PortLatch: Sendable {
  private let promise = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Int.self)

  deinit {
    self.promise.fail(CancellationError())
  }

  var value: Int {
    get async throws { try await self.promise.futureResult.get() }
  }

  func set(_ port: Int) { self.promise.succeed(port) }
  func fail(_ error: any Error) { self.promise.fail(error) }
}
