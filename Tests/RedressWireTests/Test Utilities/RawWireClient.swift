import GRPCCore
import NIOCore
import NIOPosix
import NIOSSL
import RedressWire
import Synchronization
import RedressTestSupport

/// A Redress wire peer with no protocol logic, for bad-input tests: it sends whatever octets a
/// test gives it over TLS and hands back what the server sends, decoded with
/// `FrameParser(expectingPreface: true)`, plus the moment the connection closes.
///
/// Every wait has an upper bound (``defaultTimeout`` unless given) so a server that stays silent
/// fails the test instead of hanging it.
final class RawWireClient: Sendable {
  /// What the server sent or did, in order.
  enum Event: Sendable {
    /// The server's preface or a frame.
    case element(FrameParser.Element)
    /// Octets this client's parser rejected; nothing after them is decoded.
    case undecodable(WireError)
    /// The channel failed (a TLS alert, a reset).
    case failed(any Error)
    /// The connection closed. Every later read returns this again.
    case closed
  }

  /// A `GOAWAY` the server sent.
  struct GoAway: Sendable {
    var lastStreamID: UInt32
    var code: WireErrorCode
    var debug: String
    /// Everything the server sent before it, in order.
    var preceding: [FrameParser.Element]
  }

  /// The frames the server answered one RPC with, from its first frame to `TRAILERS` or `RST_STREAM`.
  struct Answer: Sendable {
    var frames: [Frame]
    /// The status from `TRAILERS`, if the stream ended with them.
    var status: Status? {
      guard case .trailers(_, let status, _) = self.frames.last else { return nil }
      return status
    }
    /// The frame types in order, e.g. `[.headers, .message, .trailers]`.
    var types: [FrameType] { self.frames.map(\.type) }
  }

  /// What the client did not get.
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// Upper bound of every wait unless a test gives another.
  static let defaultTimeout: Duration = .seconds(5)
  /// The path of `grpc.testing.TestService/EmptyCall`, whose request and response are empty.
  static let emptyCallPath = "/grpc.testing.TestService/EmptyCall"

  let channel: any Channel
  private let inbox: Inbox

  private init(channel: any Channel, inbox: Inbox) {
    self.channel = channel
    self.inbox = inbox
  }

  // MARK: - Connecting

  /// Connects to `127.0.0.1:port` over TLS trusting `roots`, offering ALPN `redress/1` and
  /// presenting `identity` if given; `configureTLS` may change anything else (TLS versions).
  static func connect(
    port: Int,
    identity: TestPKI.Identity? = nil,
    trusting roots: [NIOSSLCertificate] = [TestPKI.shared.ca.certificate],
    configureTLS: (inout TLSConfiguration) -> Void = { _ in }
  ) async throws -> RawWireClient {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .certificates(roots)
    tls.certificateVerification = .fullVerification
    tls.applicationProtocols = [WireTLS.alpnIdentifier]
    if let identity {
      tls.certificateChain = [.certificate(identity.certificate)]
      tls.privateKey = .privateKey(identity.privateKey)
    }
    configureTLS(&tls)
    let context = try NIOSSLContext(configuration: tls)
    let inbox = Inbox()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .connectTimeout(.seconds(5))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          // No server name: NIOSSL then checks the certificate's IP SANs against 127.0.0.1.
          try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
          try sync.addHandler(Reader(inbox: inbox))
        }
      }
      .connect(host: "127.0.0.1", port: port)
      .get()
    return RawWireClient(channel: channel, inbox: inbox)
  }

  /// Runs `body` with a connected client and closes it afterwards, whatever `body` did.
  static func withConnection<T: Sendable>(
    port: Int,
    identity: TestPKI.Identity? = nil,
    configureTLS: (inout TLSConfiguration) -> Void = { _ in },
    _ body: (RawWireClient) async throws -> T
  ) async throws -> T {
    let client = try await Self.connect(port: port, identity: identity, configureTLS: configureTLS)
    do {
      let result = try await body(client)
      try? await client.channel.close()
      return result
    } catch {
      try? await client.channel.close()
      throw error
    }
  }

  // MARK: - Sending

  /// Sends `octets` as they are.
  func send(_ octets: [UInt8]) async throws {
    try await self.send(ByteBuffer(bytes: octets))
  }

  /// Sends the readable bytes of `buffer`.
  func send(_ buffer: ByteBuffer) async throws {
    try await self.channel.writeAndFlush(buffer)
  }

  /// Sends `frames`, encoded with `FrameEncoder`, in one write.
  func send(_ frames: Frame...) async throws {
    try await self.send(frames)
  }

  /// Sends `frames`, encoded with `FrameEncoder`, in one write.
  func send(_ frames: [Frame]) async throws {
    var buffer = ByteBuffer()
    for frame in frames { FrameEncoder.encode(frame, into: &buffer) }
    try await self.send(buffer)
  }

  /// Closes the sending side only (TLS `close_notify`, then a TCP half-close); reading goes on.
  func closeOutput() async throws {
    try await self.channel.close(mode: .output)
  }

  /// Octets of a frame header with any field values, followed by `payload`; `length` defaults to
  /// the payload's and may lie.
  static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8] = [], length: Int? = nil) -> [UInt8] {
    let length = length ?? payload.count
    return [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
      + [type, flags] + Self.u32(stream) + payload
  }

  /// Big-endian `UInt16` octets.
  static func u16(_ value: Int) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
  }

  /// Big-endian `UInt32` octets.
  static func u32(_ value: UInt32) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
  }

  // MARK: - Receiving

  /// The next thing the server sent or did.
  func nextEvent(timeout: Duration = RawWireClient.defaultTimeout) async throws -> Event {
    let inbox = self.inbox
    return try await withTimeout(timeout, "the next event from the server") {
      try await inbox.next()
    }
  }

  /// The next frame; throws if the server sends a preface, undecodable octets, or closes instead.
  func nextFrame(timeout: Duration = RawWireClient.defaultTimeout) async throws -> Frame {
    switch try await self.nextEvent(timeout: timeout) {
    case .element(.frame(let frame)): return frame
    case .element(.preface(let preface)): throw Failure(description: "expected a frame, got a preface \(preface)")
    case .undecodable(let error): throw Failure(description: "expected a frame, got undecodable octets: \(error)")
    case .failed(let error): throw Failure(description: "expected a frame, the connection failed: \(error)")
    case .closed: throw Failure(description: "expected a frame, the connection closed")
    }
  }

  /// Sends a preface and `SETTINGS`, reads the server's preface, `SETTINGS` and `WINDOW_UPDATE`,
  /// acknowledges the settings, and reads the server's `SETTINGS ACK` of this client's; throws if
  /// the server sends anything else.
  ///
  /// - Returns: the settings the server announced.
  @discardableResult
  func handshake(settings: [Setting] = [], timeout: Duration = RawWireClient.defaultTimeout) async throws -> [Setting] {
    var buffer = ByteBuffer()
    Preface.clientDefault.encode(into: &buffer)
    FrameEncoder.encode(.settings(settings), into: &buffer)
    try await self.send(buffer)

    let first = try await self.nextEvent(timeout: timeout)
    guard case .element(.preface(let preface)) = first, preface == .selected(Preface.currentVersion) else {
      throw Failure(description: "expected the server's preface selecting version 1, got \(first)")
    }
    let second = try await self.nextFrame(timeout: timeout)
    guard case .settings(let serverSettings) = second else {
      throw Failure(description: "expected the server's SETTINGS, got \(second)")
    }
    try await self.send(.settingsAck)
    // The server raises the connection window next, unless its configured window is the
    // initial 65,535; then it acknowledges this client's SETTINGS.
    var next = try await self.nextFrame(timeout: timeout)
    if case .windowUpdate(streamID: 0, _) = next {
      next = try await self.nextFrame(timeout: timeout)
    }
    guard case .settingsAck = next else {
      throw Failure(description: "expected the server's connection WINDOW_UPDATE or SETTINGS ACK, got \(next)")
    }
    return serverSettings
  }

  /// Waits for a `GOAWAY`, passing over anything else the server sends first; throws if the
  /// connection closes without one.
  func waitForGoAway(timeout: Duration = RawWireClient.defaultTimeout) async throws -> GoAway {
    var preceding: [FrameParser.Element] = []
    while true {
      let event: Event
      do {
        event = try await self.nextEvent(timeout: timeout)
      } catch let error as TimedOut {
        throw Failure(description: "expected a GOAWAY, \(error) (after \(preceding))")
      }
      switch event {
      case .element(.frame(.goAway(let last, let code, let debug))):
        return GoAway(lastStreamID: last, code: code, debug: debug, preceding: preceding)
      case .element(let element):
        preceding.append(element)
      case .undecodable(let error):
        throw Failure(description: "expected a GOAWAY, got undecodable octets: \(error)")
      case .failed(let error):
        throw Failure(description: "expected a GOAWAY, the connection failed: \(error) (after \(preceding))")
      case .closed:
        throw Failure(description: "expected a GOAWAY, the connection closed (after \(preceding))")
      }
    }
  }

  /// Waits for `RST_STREAM` on `stream` and returns its code, passing over frames of other
  /// streams and connection frames other than `GOAWAY`.
  func waitForReset(stream: UInt32, timeout: Duration = RawWireClient.defaultTimeout) async throws -> WireErrorCode {
    while true {
      let frame = try await self.nextFrame(timeout: timeout)
      switch frame {
      case .resetStream(stream, let code):
        return code
      case .goAway(_, let code, let debug):
        throw Failure(description: "expected RST_STREAM on stream \(stream), got GOAWAY \(code) '\(debug)'")
      default:
        continue
      }
    }
  }

  /// Waits until the connection closes; returns what the server sent before.
  @discardableResult
  func waitForClose(timeout: Duration = RawWireClient.defaultTimeout) async throws -> [FrameParser.Element] {
    var seen: [FrameParser.Element] = []
    while true {
      switch try await self.nextEvent(timeout: timeout) {
      case .element(let element): seen.append(element)
      case .undecodable, .failed: continue
      case .closed: return seen
      }
    }
  }

  /// Sends `PING` with `data` and waits for its `ACK`, passing over other frames: proof that the
  /// server still reads and answers this connection.
  func ping(_ data: UInt64 = 0x5244_5253_5049_4E47, timeout: Duration = RawWireClient.defaultTimeout) async throws {
    try await self.send(.ping(data: data, ack: false))
    while true {
      let frame = try await self.nextFrame(timeout: timeout)
      if case .ping(data: data, ack: true) = frame { return }
      if case .goAway(_, let code, let debug) = frame {
        throw Failure(description: "expected a PING ACK, got GOAWAY \(code) '\(debug)'")
      }
    }
  }

  /// Calls `grpc.testing.TestService/EmptyCall` on `stream` (`HEADERS`, then an empty message
  /// with `END_STREAM`) and collects the server's frames on that stream until it ends it.
  func emptyCall(stream: UInt32, timeout: Duration = RawWireClient.defaultTimeout) async throws -> Answer {
    try await self.send(
      .headers(streamID: stream, path: Self.emptyCallPath, metadata: [:], endStream: false),
      .message(streamID: stream, fragment: ByteBuffer(), flags: [.endMessage, .endStream])
    )
    return try await self.answer(on: stream, timeout: timeout)
  }

  /// The server's frames on `stream` until `TRAILERS` or `RST_STREAM`, other streams' frames and
  /// connection frames other than `GOAWAY` passed over.
  func answer(on stream: UInt32, timeout: Duration = RawWireClient.defaultTimeout) async throws -> Answer {
    var frames: [Frame] = []
    while true {
      let frame = try await self.nextFrame(timeout: timeout)
      if case .goAway(_, let code, let debug) = frame {
        throw Failure(description: "expected an answer on stream \(stream), got GOAWAY \(code) '\(debug)' after \(frames)")
      }
      guard frame.streamID == stream else { continue }
      if case .windowUpdate = frame { continue }
      frames.append(frame)
      switch frame {
      case .trailers, .resetStream: return Answer(frames: frames)
      default: continue
      }
    }
  }
}

// MARK: - Internals

extension RawWireClient {
  /// Decodes what the server sends and hands it to the inbox; runs on the channel's event loop.
  private final class Reader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let inbox: Inbox
    private var parser = FrameParser(expectingPreface: true)
    private var broken = false

    init(inbox: Inbox) {
      self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      guard !self.broken else { return }
      self.parser.append(self.unwrapInboundIn(data))
      do {
        while let element = try self.parser.next() {
          self.inbox.deliver(.element(element))
        }
      } catch {
        self.broken = true
        self.inbox.deliver(.undecodable(error))
      }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      self.inbox.deliver(.failed(error))
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      self.inbox.deliver(.closed)
      context.fireChannelInactive()
    }
  }

  /// Events in arrival order for one reader at a time; a read waits until an event arrives.
  private final class Inbox: Sendable {
    private struct State {
      var events = CircularBuffer<Event>()
      var waiter: CheckedContinuation<Event, any Error>?
      var closed = false
    }

    private let state = Mutex(State())

    func deliver(_ event: Event) {
      let waiter = self.state.withLock { state -> CheckedContinuation<Event, any Error>? in
        if case .closed = event {
          guard !state.closed else { return nil }
          state.closed = true
        }
        if let waiter = state.waiter {
          state.waiter = nil
          return waiter
        }
        state.events.append(event)
        return nil
      }
      waiter?.resume(returning: event)
    }

    func next() async throws -> Event {
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Event, any Error>) in
          let ready = self.state.withLock { state -> Result<Event, any Error>? in
            if let event = state.events.popFirst() { return .success(event) }
            if state.closed { return .success(.closed) }
            // Cancellation is flagged before the handler below runs, so a read that lost the
            // race with it sees the flag here.
            if Task.isCancelled { return .failure(CancellationError()) }
            precondition(state.waiter == nil, "RawWireClient has one reader at a time")
            state.waiter = continuation
            return nil
          }
          if let ready { continuation.resume(with: ready) }
        }
      } onCancel: {
        let waiter = self.state.withLock { state -> CheckedContinuation<Event, any Error>? in
          defer { state.waiter = nil }
          return state.waiter
        }
        waiter?.resume(throwing: CancellationError())
      }
    }
  }
}

