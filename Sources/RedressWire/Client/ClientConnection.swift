import GRPCCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One client connection: dialled, handshaken, and opening streams until it drains or closes.
final class ClientConnection: Sendable {
  let handle: ConnectionHandle
  let channel: any Channel
  let remotePeer: String
  let localPeer: String
  private let draining = Atomic(false)

  /// Whether new streams may go on this connection.
  var isUsable: Bool { !self.draining.load(ordering: .acquiring) && self.channel.isActive }

  private init(handle: ConnectionHandle, channel: any Channel, remotePeer: String, localPeer: String) {
    self.handle = handle
    self.channel = channel
    self.remotePeer = remotePeer
    self.localPeer = localPeer
  }

  /// Connects, completes TLS, the preface and the settings exchange.
  static func dial(
    host: String,
    port: Int,
    sslContext: NIOSSLContext?,
    serverHostname: String?,
    config: ConnectionConfig,
    connectTimeout: Duration,
    logger: Logger,
    eventLoopGroup: any EventLoopGroup,
    onDraining: @escaping @Sendable () -> Void
  ) async throws -> ClientConnection {
    let eventLoop = eventLoopGroup.any()
    let ready = eventLoop.makePromise(of: Void.self)
    let bootstrap = ClientBootstrap(group: eventLoop)
      .connectTimeout(TimeAmount(connectTimeout))
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          if let sslContext {
            try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
          }
          let handler = ConnectionHandler(role: .client(ready: ready), config: config, logger: logger)
          handler.onDraining = onDraining
          try sync.addHandler(handler)
        }
      }
    let channel: any Channel
    do {
      channel = try await bootstrap.connect(host: host, port: port).get()
    } catch {
      ready.fail(error)
      throw RPCError(code: .unavailable, message: "Could not connect to \(host):\(port): \(error)", cause: error)
    }
    do {
      try await ready.futureResult.get()
    } catch let error as RPCError {
      channel.close(promise: nil)
      throw error
    } catch {
      channel.close(promise: nil)
      throw RPCError(
        code: .unavailable,
        message: "Could not set up a connection to \(host):\(port): \(ConnectionHandler.describeError(error))",
        cause: error
      )
    }
    return try await eventLoop.submit {
      let handler = try channel.pipeline.syncOperations.handler(type: ConnectionHandler.self)
      return ClientConnection(
        handle: handler.makeHandle(),
        channel: channel,
        remotePeer: handler.remoteAddress,
        localPeer: handler.localAddress
      )
    }.get()
  }

  /// Marks the connection as not taking new streams.
  func markDraining() {
    self.draining.store(true, ordering: .releasing)
  }

  /// Opens a stream; waits while the server's concurrency limit is reached.
  func openStream() async throws -> (InboundQueue<RPCResponsePart<WireBytes>>, StreamHandle) {
    let promise = self.handle.eventLoop.makePromise(of: (InboundQueue<RPCResponsePart<WireBytes>>, UInt64).self)
    self.handle.execute { handler in
      handler.openStream { result in
        switch result {
        case .success(let opened):
          promise.succeed(opened)
        case .failure(let error):
          promise.fail(error)
        }
      }
    }
    let (queue, key) = try await promise.futureResult.get()
    return (queue, StreamHandle(key: key, connection: self.handle))
  }

  /// No new streams; closes once the open ones finish.
  func beginGracefulShutdown() {
    self.markDraining()
    self.handle.execute { $0.beginGracefulShutdown() }
  }

  /// Closes at once; open streams fail with `unavailable`.
  func close() {
    self.channel.close(promise: nil)
  }

  /// Completes when the connection has closed.
  func waitUntilClosed() async {
    try? await self.channel.closeFuture.get()
  }
}
