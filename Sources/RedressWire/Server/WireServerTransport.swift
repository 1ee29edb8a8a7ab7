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

    /// A configuration with the given security and connection settings.
    public init(security: ServerSecurity, connection: ConnectionConfig) {
      self.security = security
      self.connection = connection
    }

    /// The defaults of ``ConnectionConfig/defaults`` with the given security.
    public static func defaults(security: ServerSecurity) -> Self {
      Self(security: security, connection: .defaults)
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

    let serverChannel: NIOAsyncChannel<ServerConnection, Never>
    do {
      serverChannel = try await ServerBootstrap(group: self.eventLoopGroup)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelOption(.backlog, value: 256)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .bind(host: self.host, port: self.port) { channel in
          channel.eventLoop.makeCompletedFuture {
            try ServerConnection.configure(channel: channel, sslContext: sslContext, config: connectionConfig, logger: logger)
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
            let id = ObjectIdentifier(connection)
            self.connections.withLock { $0[id] = connection.handle }
            // Registered first, then checked: a shutdown that began in between still reaches it.
            if self.isShuttingDown { connection.handle.execute { $0.beginGracefulShutdown() } }
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
