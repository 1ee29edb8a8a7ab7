import GRPCCore
import Logging
import NIOCore
import NIOSSL

/// One accepted connection: its pipeline and the loop that runs a task per stream.
final class ServerConnection: Sendable {
  /// `nil` for a connection refused as it was accepted.
  let handle: ConnectionHandle?
  private let channel: any Channel
  private let streams: AsyncStream<ServerStreamStart>

  private init(handle: ConnectionHandle?, channel: any Channel, streams: AsyncStream<ServerStreamStart>) {
    self.handle = handle
    self.channel = channel
    self.streams = streams
  }

  /// Builds the pipeline of an accepted channel; runs on its event loop.
  static func configure(
    channel: any Channel,
    sslContext: NIOSSLContext?,
    config: ConnectionConfig,
    budget: InboundBudget,
    observer: (any WireObserver)? = nil,
    logger: Logger
  ) throws -> ServerConnection {
    let (streams, continuation) = AsyncStream.makeStream(of: ServerStreamStart.self)
    let handler = ConnectionHandler(
      role: .server(onStream: { continuation.yield($0) }),
      config: config,
      logger: logger,
      serverBudget: budget,
      observer: observer
    )
    let sync = channel.pipeline.syncOperations
    if let sslContext {
      try sync.addHandler(NIOSSLServerHandler(context: sslContext))
    }
    try sync.addHandler(handler)
    channel.closeFuture.whenComplete { _ in continuation.finish() }
    return ServerConnection(handle: handler.makeHandle(), channel: channel, streams: streams)
  }

  /// A connection over a cap: closed at once, with no pipeline and no stream.
  static func refused(channel: any Channel) -> ServerConnection {
    let (streams, continuation) = AsyncStream.makeStream(of: ServerStreamStart.self)
    continuation.finish()
    channel.close(promise: nil)
    return ServerConnection(handle: nil, channel: channel, streams: streams)
  }

  /// Runs every stream of the connection until it closes and its streams are done.
  func run(
    streamHandler: @escaping @Sendable (
      RPCStream<ServerTransport.Inbound, ServerTransport.Outbound>,
      ServerContext
    ) async -> Void
  ) async {
    await withTaskCancellationHandler {
      await withDiscardingTaskGroup { group in
        for await start in self.streams {
          group.addTask {
            await Self.runStream(start, streamHandler: streamHandler)
          }
        }
      }
    } onCancel: {
      self.channel.close(promise: nil)
    }
  }

  typealias ServerTransport = WireServerTransport

  private static func runStream(
    _ start: ServerStreamStart,
    streamHandler: @Sendable (
      RPCStream<ServerTransport.Inbound, ServerTransport.Outbound>,
      ServerContext
    ) async -> Void
  ) async {
    await withServerContextRPCCancellationHandle { cancellation in
      start.cancellation.attach(cancellation)
      var context = ServerContext(
        descriptor: start.descriptor,
        remotePeer: start.remoteAddress,
        localPeer: start.localAddress,
        cancellation: cancellation
      )
      context.transportSpecific = start.peer
      let completion = StreamCompletion()
      let stream = RPCStream(
        descriptor: start.descriptor,
        inbound: RPCAsyncSequence<RPCRequestPart<WireBytes>, any Error>(wrapping: ServerInboundSequence(queue: start.inbound)),
        outbound: RPCWriter.Closable(
          wrapping: ServerStreamWriter(
            handle: start.handle, compression: start.responseCompression, completion: completion
          )
        )
      )
      await streamHandler(stream, context)
      completion.close(start.handle)
    }
  }
}
