import GRPCCore
import NIOCore
import NIOPosix
import NIOSSL
import RedressWire
import Synchronization
import RedressTestSupport

/// A Redress wire server with no gRPC behind it, for client lifecycle tests: it completes the
/// preface and `SETTINGS` handshake over TLS (the test PKI's server leaf, ALPN `redress/1`), then
/// answers as its ``Behaviour`` says, and records what every connection sent and when it closed.
///
/// Tests wait for what they expect with ``first(where:timeout:_:)``, which is bounded.
final class RawWireServer: Sendable {
  /// How the server answers.
  struct Behaviour: Sendable {
    /// How a request stream is answered.
    enum RequestAnswer: Sendable {
      /// Once the client half-closes: response `HEADERS`, one empty message, `TRAILERS` OK (so
      /// `EmptyCall` succeeds).
      case emptyResponse
      /// `RST_STREAM REFUSED_STREAM` on its `HEADERS`.
      case refuse
      /// Nothing, ever.
      case ignore
    }

    var requests: RequestAnswer = .emptyResponse
    /// Whether `PING`s are answered with `ACK`; a server that does not looks gone to keepalive.
    var answersPings = true
    /// Whether the server withholds its preface and `SETTINGS` (so each connection stays in its
    /// handshake) until ``releaseHandshakes()``.
    var holdsHandshakes = false
  }

  /// What a connection did, in order; connections are numbered from 1 in accept order.
  enum Event: Sendable {
    case accepted(connection: Int)
    case received(connection: Int, FrameParser.Element)
    case closed(connection: Int)

    var frame: Frame? {
      if case .received(_, .frame(let frame)) = self { return frame }
      return nil
    }
  }

  let port: Int
  private let listener: any Channel
  private let log: EventLog
  private let gate: EventLoopPromise<Void>
  private let children: Children

  private init(port: Int, listener: any Channel, log: EventLog, gate: EventLoopPromise<Void>, children: Children) {
    self.port = port
    self.listener = listener
    self.log = log
    self.gate = gate
    self.children = children
  }

  /// Runs `body` with a server listening on `127.0.0.1` (a free port), then closes it and every
  /// connection it accepted.
  static func withServer<T: Sendable>(
    _ behaviour: Behaviour = Behaviour(),
    _ body: (RawWireServer) async throws -> T
  ) async throws -> T {
    let server = try await Self.start(behaviour)
    do {
      let result = try await body(server)
      await server.close()
      return result
    } catch {
      await server.close()
      throw error
    }
  }

  private static func start(_ behaviour: Behaviour) async throws -> RawWireServer {
    var tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: [.certificate(TestPKI.shared.server.certificate)],
      privateKey: .privateKey(TestPKI.shared.server.privateKey)
    )
    tls.applicationProtocols = [WireTLS.alpnIdentifier]
    let context = try NIOSSLContext(configuration: tls)
    let log = EventLog()
    let group = MultiThreadedEventLoopGroup.singleton
    let gate = group.any().makePromise(of: Void.self)
    if !behaviour.holdsHandshakes { gate.succeed() }
    let children = Children()
    let nextID = Atomic(0)
    let listener = try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let id = nextID.add(1, ordering: .relaxed).newValue
          children.channels.withLock { $0[id] = channel }
          let sync = channel.pipeline.syncOperations
          try sync.addHandler(NIOSSLServerHandler(context: context))
          try sync.addHandler(Handler(id: id, behaviour: behaviour, log: log, gate: gate.futureResult))
        }
      }
      .bind(host: "127.0.0.1", port: 0)
      .get()
    return RawWireServer(port: listener.localAddress!.port!, listener: listener, log: log, gate: gate, children: children)
  }

  /// Lets every held handshake, and every later one, go on.
  func releaseHandshakes() {
    self.gate.succeed()
  }

  /// Everything recorded so far.
  var events: [Event] { self.log.all }

  /// The frames connection `id` sent so far.
  func frames(connection id: Int) -> [Frame] {
    self.events.compactMap { event in
      guard case .received(id, .frame(let frame)) = event else { return nil }
      return frame
    }
  }

  /// How many connections were accepted so far.
  var acceptedCount: Int {
    self.events.count { if case .accepted = $0 { true } else { false } }
  }

  /// The first event, recorded already or still to come, for which `predicate` holds; throws
  /// ``TimedOut`` after `timeout`.
  @discardableResult
  func first(
    where predicate: @escaping @Sendable (Event) -> Bool,
    timeout: Duration = RawWireClient.defaultTimeout,
    _ what: String
  ) async throws -> Event {
    let log = self.log
    return try await withTimeout(timeout, what) { try await log.first(where: predicate) }
  }

  private func close() async {
    self.gate.succeed()
    try? await self.listener.close()
    for channel in self.children.channels.withLock({ Array($0.values) }) {
      try? await channel.close()
    }
  }
}

extension RawWireServer {
  /// One connection's protocol: handshake, then the behaviour; runs on the channel's event loop.
  private final class Handler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let id: Int
    private let behaviour: Behaviour
    private let log: EventLog
    private let gate: EventLoopFuture<Void>
    private var parser = FrameParser(expectingPreface: true)
    private var released = false

    init(id: Int, behaviour: Behaviour, log: EventLog, gate: EventLoopFuture<Void>) {
      self.id = id
      self.behaviour = behaviour
      self.log = log
      self.gate = gate
    }

    func channelActive(context: ChannelHandlerContext) {
      self.log.append(.accepted(connection: self.id))
      // Nothing is parsed (so nothing answered) until the gate opens: the client then sees a
      // handshake that has not finished.
      self.gate.hop(to: context.eventLoop).assumeIsolated().whenSuccess { [self] in
        self.released = true
        self.process(context: context)
      }
      context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      self.parser.append(self.unwrapInboundIn(data))
      if self.released { self.process(context: context) }
    }

    private func process(context: ChannelHandlerContext) {
      var out = ByteBuffer()
      do {
        while let element = try self.parser.next() {
          self.log.append(.received(connection: self.id, element))
          self.answer(element, into: &out)
        }
      } catch {
        context.close(promise: nil)
        return
      }
      if out.readableBytes > 0 {
        context.writeAndFlush(self.wrapOutboundOut(out), promise: nil)
      }
    }

    private func answer(_ element: FrameParser.Element, into out: inout ByteBuffer) {
      switch element {
      case .preface:
        Preface.selected(Preface.currentVersion).encode(into: &out)
        FrameEncoder.encode(.settings([]), into: &out)
      case .frame(.settings):
        FrameEncoder.encode(.settingsAck, into: &out)
      case .frame(.ping(let data, ack: false)) where self.behaviour.answersPings:
        FrameEncoder.encode(.ping(data: data, ack: true), into: &out)
      case .frame(.headers(let id, _, _, let endStream)):
        switch self.behaviour.requests {
        case .refuse:
          FrameEncoder.encode(.resetStream(streamID: id, code: .refusedStream), into: &out)
        case .emptyResponse where endStream:
          Self.answerEmpty(id, into: &out)
        case .emptyResponse, .ignore:
          break
        }
      case .frame(.message(let id, _, let flags)) where flags.contains(.endStream):
        if case .emptyResponse = self.behaviour.requests {
          Self.answerEmpty(id, into: &out)
        }
      default:
        break
      }
    }

    private static func answerEmpty(_ id: UInt32, into out: inout ByteBuffer) {
      FrameEncoder.encode(.headers(streamID: id, path: "", metadata: [:], endStream: false), into: &out)
      FrameEncoder.encode(.message(streamID: id, fragment: ByteBuffer(), flags: .endMessage), into: &out)
      FrameEncoder.encode(.trailers(streamID: id, status: Status(code: .ok, message: ""), metadata: [:]), into: &out)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      self.log.append(.closed(connection: self.id))
      context.fireChannelInactive()
    }
  }

  /// The accepted connections, to close with the server.
  private final class Children: Sendable {
    let channels = Mutex([Int: any Channel]())
  }

  /// Events in order, with waiters for the first event matching a predicate.
  private typealias EventLog = AwaitableLog<Event>
}
