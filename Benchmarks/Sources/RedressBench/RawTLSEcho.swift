import NIOCore
import NIOPosix
import NIOSSL

/// The floor: the same bytes over SwiftNIO and TLS with no RPC layer. Each request is a 4-octet
/// big-endian length then the payload; the server sends each one back as it is. A connection
/// carries many requests at once (pipelined, answered in order), as an RPC connection does.
enum RawTLSEcho {
  /// Runs the echo server on 127.0.0.1 on a free port while `body` runs with the port.
  static func withServer<Result: Sendable>(
    pki: BenchPKI,
    _ body: @Sendable (Int) async throws -> Result
  ) async throws -> Result {
    var tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: [.certificate(pki.serverCertificate)],
      privateKey: .privateKey(pki.serverKey)
    )
    tls.minimumTLSVersion = .tlsv12
    let context = try NIOSSLContext(configuration: tls)
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          try sync.addHandler(NIOSSLServerHandler(context: context))
          try sync.addHandler(ByteToMessageHandler(LengthPrefixedDecoder()))
          try sync.addHandler(EchoHandler())
        }
      }
      .bind(host: "127.0.0.1", port: 0)
      .get()
    do {
      let result = try await body(server.localAddress!.port!)
      try? await server.close()
      return result
    } catch {
      try? await server.close()
      throw error
    }
  }

  /// A client connection that sends framed requests and completes each when its echo arrives.
  struct Connection: Sendable {
    let channel: any Channel
    private let replies: NIOLoopBound<RepliesHandler>

    static func connect(port: Int, pki: BenchPKI) async throws -> Connection {
      var tls = TLSConfiguration.makeClientConfiguration()
      tls.trustRoots = .certificates([pki.caCertificate])
      tls.certificateVerification = .fullVerification
      let context = try NIOSSLContext(configuration: tls)
      let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
            try sync.addHandler(ByteToMessageHandler(LengthPrefixedDecoder()))
            try sync.addHandler(RepliesHandler())
          }
        }
        .connect(host: "127.0.0.1", port: port)
        .get()
      let replies = try await channel.eventLoop.submit {
        NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RepliesHandler.self), eventLoop: channel.eventLoop)
      }.get()
      return Connection(channel: channel, replies: replies)
    }

    /// Sends `payload` and returns once the same number of octets came back.
    func echo(_ payload: [UInt8]) async throws {
      let channel = self.channel
      let replies = self.replies
      try await channel.eventLoop.flatSubmit {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        replies.value.pending.append((promise, payload.count))
        var buffer = channel.allocator.buffer(capacity: 4 + payload.count)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        channel.writeAndFlush(buffer, promise: nil)
        return promise.futureResult
      }.get()
    }
  }

  /// Splits the octet stream into length-prefixed messages.
  struct LengthPrefixedDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
      guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
        buffer.readableBytes >= 4 + Int(length)
      else { return .needMoreData }
      buffer.moveReaderIndex(forwardBy: 4)
      context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
      return .continue
    }
  }

  /// Server side: answers each message with itself, flushing once per read burst.
  final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let message = Self.unwrapInboundIn(data)
      var out = context.channel.allocator.buffer(capacity: 4 + message.readableBytes)
      out.writeInteger(UInt32(message.readableBytes))
      out.writeImmutableBuffer(message)
      context.write(Self.wrapOutboundOut(out), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
      context.flush()
    }
  }

  /// Client side: completes requests in the order they were sent.
  final class RepliesHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var pending = CircularBuffer<(EventLoopPromise<Void>, Int)>()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let message = Self.unwrapInboundIn(data)
      guard let (promise, expected) = self.pending.popFirst() else { return }
      if message.readableBytes == expected {
        promise.succeed()
      } else {
        promise.fail(BenchError("The raw echo answered \(message.readableBytes) octets for \(expected)."))
      }
    }

    func channelInactive(context: ChannelHandlerContext) {
      while let (promise, _) = self.pending.popFirst() {
        promise.fail(BenchError("The raw echo connection closed."))
      }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      context.close(promise: nil)
    }
  }
}
