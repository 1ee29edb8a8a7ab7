public import GRPCCore
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// A grpc-swift-2 server transport speaking the Redress wire over TLS.
///
/// ```swift
/// let transport = WireServerTransport(
///   host: "0.0.0.0", port: 7443,
///   config: .defaults(security: .tls(ServerTLS(certificateChain: chain, privateKey: key)))
/// )
/// let server = GRPCServer(transport: transport, services: [MyService()])
/// try await server.serve()
/// ```
public final class WireServerTransport: ServerTransport, Sendable {
  public typealias Bytes = WireBytes

  /// Server transport configuration.
  public struct Config: Sendable {
    /// TLS (the default) or, for tests only, plaintext.
    public var security: ServerSecurity
    /// Connection limits and timers.
    public var connection: ConnectionConfig
    /// Limits over all of the server's connections.
    public var limits: Limits
    /// Told about connections, streams, bytes, `GOAWAY` and `RESET_STREAM` for metrics; `nil`: nobody.
    public var observer: (any WireObserver)?

    /// A configuration with the given security, connection settings and server-wide limits.
    public init(
      security: ServerSecurity, connection: ConnectionConfig, limits: Limits = .defaults, observer: (any WireObserver)? = nil
    ) {
      self.security = security
      self.connection = connection
      self.limits = limits
      self.observer = observer
    }

    /// The defaults of ``ConnectionConfig/defaults`` with the given security.
    public static func defaults(security: ServerSecurity) -> Self {
      Self(security: security, connection: .defaults)
    }
  }

  /// Server-wide limits: they hold before any authentication, whatever the clients do.
  public struct Limits: Sendable, Hashable {
    /// Connections open at once; more are closed as they are accepted, before TLS.
    public var maxConnections: Int
    /// Connections open at once from one remote IP address; more are closed as they are accepted.
    public var maxConnectionsPerAddress: Int
    /// Octets received and not yet read, summed over every connection (each also has its own
    /// ``ConnectionConfig/maxBufferedInboundBytes``). A `MESSAGE` that would pass it fails its RPC with
    /// `resourceExhausted` and is discarded.
    public var maxBufferedInboundBytes: Int

    /// The given limits.
    public init(maxConnections: Int, maxConnectionsPerAddress: Int, maxBufferedInboundBytes: Int) {
      self.maxConnections = maxConnections
      self.maxConnectionsPerAddress = maxConnectionsPerAddress
      self.maxBufferedInboundBytes = maxBufferedInboundBytes
    }

    /// 1,024 connections, 128 from one address, 64 MiB buffered inbound.
    public static var defaults: Self {
      Self(maxConnections: 1024, maxConnectionsPerAddress: 128, maxBufferedInboundBytes: 64 * 1024 * 1024)
    }
  }

  private enum State {
    case idle
    case listening(any Channel)
    case shuttingDown
    case stopped
  }

  private let host: String
  private let port: Int
  private let config: Config
  private let logger: Logger
  private let eventLoopGroup: any EventLoopGroup
  private let state = Mutex(State.idle)
  private let connections = Mutex([ObjectIdentifier: ConnectionHandle]())
  private let addressPromise: EventLoopPromise<SocketAddress>
  /// Octets received and not yet read over all connections (``Limits/maxBufferedInboundBytes``).
  let inboundBudget: InboundBudget
  /// Open connections, counted against ``Limits/maxConnections`` and ``Limits/maxConnectionsPerAddress``.
  let admission: ConnectionAdmission

  /// A transport that will listen on `host:port` (port 0 picks a free port; see
  /// ``listeningAddress``).
  public init(
    host: String,
    port: Int,
    config: Config,
    logger: Logger = Logger(label: "redress.wire.server"),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    self.host = host
    self.port = port
    self.config = config
    self.logger = logger
    self.eventLoopGroup = eventLoopGroup
    self.addressPromise = eventLoopGroup.any().makePromise(of: SocketAddress.self)
    self.inboundBudget = InboundBudget(serverLimit: config.limits.maxBufferedInboundBytes)
    self.admission = ConnectionAdmission(
      maxConnections: config.limits.maxConnections,
      maxPerAddress: config.limits.maxConnectionsPerAddress
    )
  }

  deinit {
    self.addressPromise.fail(RPCError(code: .unavailable, message: "The server transport was never started."))
  }

  /// The address the transport listens on, once it does.
  public var listeningAddress: SocketAddress {
    get async throws {
      try await self.addressPromise.futureResult.get()
    }
  }

  public func listen(
    streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
  ) async throws {
    let sslContext: NIOSSLContext?
    switch self.config.security {
    case .tls(let tls):
      do {
        sslContext = try tls.makeContext()
      } catch {
        let failure = RPCError(code: .invalidArgument, message: "Invalid server TLS configuration: \(error)", cause: error)
        self.addressPromise.fail(failure)
        throw failure
      }
    case .plaintextForTestingOnly:
      sslContext = nil
    }
    let connectionConfig = self.config.connection
    let logger = self.logger
    let admission = self.admission
    let budget = self.inboundBudget
    let refusals = RefusalLog(logger: logger)
    let observer = self.config.observer

    let serverChannel: NIOAsyncChannel<ServerConnection, Never>
    do {
      serverChannel = try await ServerBootstrap(group: self.eventLoopGroup)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelOption(.backlog, value: 256)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .bind(host: self.host, port: self.port) { channel in
          channel.eventLoop.makeCompletedFuture {
            let key = ConnectionAdmission.key(channel.remoteAddress)
            if let refusal = admission.admit(key) {
              refusals.record(refusal, address: key)
              switch refusal {
              case .server: observer?.connectionRefused(limit: "server")
              case .address: observer?.connectionRefused(limit: "address")
              }
              return ServerConnection.refused(channel: channel)
            }
            observer?.connectionOpened()
            channel.closeFuture.whenComplete { _ in
              admission.release(key)
              observer?.connectionClosed()
            }
            return try ServerConnection.configure(
              channel: channel, sslContext: sslContext, config: connectionConfig, budget: budget, observer: observer,
              logger: logger
            )
          }
        }
    } catch {
      let failure = RPCError(code: .unavailable, message: "Could not listen on \(self.host):\(self.port): \(error)", cause: error)
      self.addressPromise.fail(failure)
      throw failure
    }

    let proceed = self.state.withLock { state -> Bool in
      switch state {
      case .idle:
        state = .listening(serverChannel.channel)
        return true
      case .listening, .shuttingDown, .stopped:
        return false
      }
    }
    guard proceed else {
      try? await serverChannel.channel.close()
      throw RPCError(code: .failedPrecondition, message: "The server transport is already listening or was shut down.")
    }
    if let address = serverChannel.channel.localAddress {
      self.addressPromise.succeed(address)
    }
    self.logger.info("Listening", metadata: ["address": "\(serverChannel.channel.localAddress.map { "\($0)" } ?? "?")"])

    try await withTaskCancellationHandler {
      try await serverChannel.executeThenClose { inbound in
        try await withThrowingDiscardingTaskGroup { group in
          for try await connection in inbound {
            // A connection refused by a cap is already closing: nothing to run.
            guard let handle = connection.handle else { continue }
            let id = ObjectIdentifier(connection)
            self.connections.withLock { $0[id] = handle }
            // Registered first, then checked: a shutdown that began in between still reaches it.
            if self.isShuttingDown { handle.execute { $0.beginGracefulShutdown() } }
            group.addTask {
              await connection.run(streamHandler: streamHandler)
              self.connections.withLock { _ = $0.removeValue(forKey: id) }
            }
          }
        }
      }
    } onCancel: {
      for handle in self.connections.withLock({ Array($0.values) }) {
        handle.execute { $0.connectionError(WireError(.noError, "server stopped")) }
      }
    }
    self.state.withLock { $0 = .stopped }
  }

  private var isShuttingDown: Bool {
    self.state.withLock { state in
      if case .shuttingDown = state { return true }
      return false
    }
  }

  /// Stops accepting connections and streams. In-flight RPCs finish; clients get `GOAWAY` and
  /// open new streams elsewhere.
  public func beginGracefulShutdown() {
    let channel = self.state.withLock { state -> (any Channel)? in
      switch state {
      case .listening(let channel):
        state = .shuttingDown
        return channel
      case .idle:
        state = .stopped
        return nil
      case .shuttingDown, .stopped:
        return nil
      }
    }
    channel?.close(promise: nil)
    for handle in self.connections.withLock({ Array($0.values) }) {
      handle.execute { $0.beginGracefulShutdown() }
    }
  }
}

/// Logs refused connections at most once per 10 s with how many there were, so a flood of them cannot
/// flood the log too.
private struct RefusalLog: Sendable {
  let logger: Logger
  let throttle = LogThrottle(interval: .seconds(10))

  func record(_ refusal: ConnectionAdmission.Refusal, address: String) {
    guard let suppressed = self.throttle.admit() else { return }
    let cap: String
    switch refusal {
    case .server(let limit): cap = "the server's \(limit) connections (maxConnections)"
    case .address(let limit): cap = "\(limit) connections from one address (maxConnectionsPerAddress)"
    }
    self.logger.warning(
      "Refused a connection over a cap",
      metadata: ["peer": "\(address)", "cap": "\(cap)", "refused_since_last_log": "\(suppressed)"]
    )
  }
}
