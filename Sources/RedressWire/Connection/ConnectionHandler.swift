import GRPCCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Runs one Redress wire connection on its event loop: parses frames, keeps the stream states and
/// windows, enforces the limits, and writes frames coalesced into one flush per loop tick.
///
/// Both transports use it; `role` decides who opens streams. Everything here runs on the
/// channel's event loop; async code reaches it through ``StreamHandle`` and ``ConnectionHandle``.
final class ConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  enum Role {
    /// Accepts streams and hands each to `onStream`.
    case server(onStream: @Sendable (ServerStreamStart) -> Void)
    /// Opens streams; `ready` completes once the server's preface and settings arrived.
    case client(ready: EventLoopPromise<Void>)
  }

  private enum Phase {
    case awaitingPreface
    case awaitingSettings
    case active
    case closed
  }

  let role: Role
  let config: ConnectionConfig
  let logger: Logger
  /// Called once when the connection starts draining: a `GOAWAY` was received or sent.
  var onDraining: (@Sendable () -> Void)?

  private var isServer: Bool {
    if case .server = self.role { return true }
    return false
  }

  private var context: ChannelHandlerContext!
  private var phase = Phase.awaitingPreface
  private var parser: FrameParser
  private let localSettings: PeerSettings
  private(set) var peerSettings = PeerSettings()
  private(set) var peerIdentity: PeerIdentity?
  private(set) var remoteAddress = "unknown"
  private(set) var localAddress = "unknown"
  /// Why the connection ended, if it ended badly; surfaced to the client's RPCs.
  private(set) var closeReason: RPCError?

  private var streams: [UInt64: StreamRecord] = [:]
  private var streamsByID: [UInt32: StreamRecord] = [:]
  private var nextKey: UInt64 = 1
  private var lastPeerStreamID: UInt32 = 0
  private var nextLocalStreamID: UInt32 = 1
  private var waitingOpens = CircularBuffer<(key: UInt64, completion: (Result<StreamRecord, any Error>) -> Void, make: () -> StreamRecord)>()
  /// Ids of streams this side closed while the peer may still be sending on them.
  private var recentlyClosed = CircularBuffer<UInt32>(initialCapacity: 64)

  private var sendConnectionWindow = PeerSettings.initialConnectionWindowSize
  private var receiveConnectionWindow = PeerSettings.initialConnectionWindowSize
  private var pendingConnectionCredit = 0
  private var readyStreams = CircularBuffer<StreamRecord>()

  private var outBuffer: ByteBuffer
  private var inReadLoop = false
  private var flushPending = false
  private var flushScheduled = false

  private var goAwaySent = false
  private var goAwayReceived: UInt32?
  private var drainingNotified = false
  private var closeWhenIdle = false

  private var handshakeTimer: Scheduled<Void>?
  private var idleTimer: Scheduled<Void>?
  private var keepaliveTask: Scheduled<Void>?
  private var keepaliveTimeout: Scheduled<Void>?
  private var keepaliveData: UInt64 = 0
  private var resetLimiter: RateLimiter
  private var pingLimiter: RateLimiter
  /// Octets received and not yet read on this connection, drawing on the server's budget too.
  let inboundBudget: InboundBudget

  init(role: Role, config: ConnectionConfig, logger: Logger, serverBudget: InboundBudget? = nil) {
    self.role = role
    self.config = config
    self.logger = logger
    self.inboundBudget = InboundBudget(connectionLimit: config.maxBufferedInboundBytes, server: serverBudget)
    self.localSettings = config.localSettings
    self.parser = FrameParser(
      expectingPreface: true,
      maxFrameSize: self.localSettings.maxFrameSize,
      maxMetadataSize: self.localSettings.maxMetadataSize
    )
    self.outBuffer = ByteBuffer()
    let now = NIODeadline.now()
    self.resetLimiter = RateLimiter(config.resetRateLimit, now: now)
    self.pingLimiter = RateLimiter(config.pingRateLimit, now: now)
  }

  // MARK: - Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if context.channel.isActive {
      self.start(context: context)
    }
  }

  /// The pipeline is done with this handler (the channel closed). The context holds the handler and the handler
  /// held the context: a cycle that kept every connection's handler, context, pipeline and channel alive after
  /// it closed (found by the connection fuzz target's memory growth, ~4 KB per connection). Nothing may use
  /// the context afterwards; calls still arriving through a ``ConnectionHandle`` find the connection closed.
  func handlerRemoved(context: ChannelHandlerContext) {
    if self.phase != .closed {
      self.tearDown(reason: self.closeReason ?? RPCError(code: .unavailable, message: "The connection to \(self.remoteAddress) closed."))
    }
    self.context = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    self.start(context: context)
    context.fireChannelActive()
  }

  private var started = false

  private func start(context: ChannelHandlerContext) {
    guard !self.started else { return }
    self.started = true
    self.remoteAddress = Self.describe(context.channel.remoteAddress)
    self.localAddress = Self.describe(context.channel.localAddress)
    self.handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(self.config.handshakeTimeout)) { [self] in
      self.handshakeTimer = nil
      guard self.phase != .active && self.phase != .closed else { return }
      self.connectionError(WireError(.handshakeTimeout, "no preface and SETTINGS within \(self.config.handshakeTimeout)"))
    }
    if case .client = self.role {
      // NIOSSL holds these until its handshake is done; they leave in the first TLS flight after.
      self.prepareOutBuffer()
      Preface.clientDefault.encode(into: &self.outBuffer)
      self.sendOwnSettings()
      self.flushNow()
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    if (self.phase == .awaitingPreface || self.phase == .awaitingSettings) && self.closeReason == nil {
      // Nothing else reports it: e.g. a client that rejected our certificate after the TLS
      // handshake (a host name mismatch) just closes.
      self.logger.info(
        "Connection closed by the peer before the handshake completed",
        metadata: ["peer": "\(self.remoteAddress)", "phase": "\(self.phase)"]
      )
    }
    self.tearDown(reason: self.closeReason ?? RPCError(code: .unavailable, message: "The connection to \(self.remoteAddress) closed."))
    context.fireChannelInactive()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
      guard negotiated == WireTLS.alpnIdentifier else {
        self.connectionError(
          WireError(.protocolError, "TLS ALPN selected '\(negotiated ?? "no protocol")'; Redress peers must select '\(WireTLS.alpnIdentifier)'")
        )
        return
      }
      if let sslHandler = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self),
        let certificate = sslHandler.peerCertificate
      {
        self.peerIdentity = PeerIdentity(certificate)
      }
    }
    context.fireUserInboundEventTriggered(event)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    let description = Self.describeError(error)
    self.logger.info(
      "Connection failed",
      metadata: ["peer": "\(self.remoteAddress)", "error": "\(description)"]
    )
    if self.closeReason == nil {
      self.closeReason = RPCError(
        code: .unavailable,
        message: "The connection to \(self.remoteAddress) failed: \(description)",
        cause: error
      )
    }
    if case .client(let ready) = self.role {
      ready.fail(self.closeReason!)
    }
    context.close(promise: nil)
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable {
      self.drain()
      self.flushIfNeeded()
    }
    context.fireChannelWritabilityChanged()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard self.phase != .closed else { return }
    self.inReadLoop = true
    self.parser.append(self.unwrapInboundIn(data))
    defer {
      // Answers go out at the end of the read burst (channelReadComplete) or, if no such event
      // follows this read, on the next loop turn: never left waiting for more input.
      self.inReadLoop = false
      self.scheduleFlush()
    }
    while self.phase != .closed {
      let element: FrameParser.Element?
      do {
        element = try self.parser.next()
      } catch {
        // A stream error means the parser consumed the frame: answer the stream and go on.
        self.fail(error)
        if case .stream = error.scope { continue }
        return
      }
      guard let element else { return }
      do {
        try self.handle(element)
      } catch let error as WireError {
        self.fail(error)
      } catch {
        self.connectionError(WireError(.internalError, "\(error)"))
      }
    }
  }

  private func fail(_ error: WireError) {
    switch error.scope {
    case .stream:
      self.streamError(error, countsAsAbuse: true)
    case .connection:
      self.connectionError(error)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.flushIfNeeded()
    context.fireChannelReadComplete()
  }

  // MARK: - Frames

  private func handle(_ element: FrameParser.Element) throws {
    switch element {
    case .preface(let preface):
      try self.handlePreface(preface)
    case .frame(let frame):
      switch self.phase {
      case .awaitingPreface:
        if case .goAway(_, let code, let debug) = frame {
          // A server refusing our preface answers with a GOAWAY instead of its own.
          self.closeReason = RPCError(code: .unavailable, message: "The server refused the connection: \(code) \(debug)")
          if case .client(let ready) = self.role { ready.fail(self.closeReason!) }
          self.closeChannel()
          return
        }
        throw WireError(.protocolError, "expected a connection preface, got a \(frame.type) frame")
      case .awaitingSettings:
        guard case .settings(let settings) = frame else {
          throw WireError(.protocolError, "the first frame must be SETTINGS, got \(frame.type)")
        }
        // Streams exist only once settings are known (the client waits for them), so every
        // stream starts with the peer's windows and limits; nothing to adjust here.
        try self.peerSettings.apply(settings)
        self.write(.settingsAck)
        self.phase = .active
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        self.startTimers()
        if case .client(let ready) = self.role { ready.succeed() }
      case .active:
        try self.handleActive(frame)
      case .closed:
        return
      }
    }
  }

  private func handlePreface(_ preface: Preface) throws {
    guard self.phase == .awaitingPreface else {
      throw WireError(.protocolError, "a second preface")
    }
    let supported = Preface.currentVersion
    if self.isServer {
      guard preface.minimumVersion <= supported && supported <= preface.maximumVersion else {
        self.logger.info(
          "Refusing a client's versions",
          metadata: ["peer": "\(self.remoteAddress)", "offered": "\(preface.minimumVersion)...\(preface.maximumVersion)"]
        )
        // Exactly the debug text docs/PROTOCOL.md §3.2 shows: it names the versions the server speaks.
        throw WireError(.versionUnsupported, "server speaks versions \(supported)...\(supported)")
      }
      self.prepareOutBuffer()
      Preface.selected(supported).encode(into: &self.outBuffer)
      self.sendOwnSettings()
    } else {
      guard preface.minimumVersion == supported && preface.maximumVersion == supported else {
        throw WireError(.versionUnsupported, "server selected version \(preface.minimumVersion), which this client did not offer")
      }
    }
    self.phase = .awaitingSettings
    self.markFlush()
  }

  private func sendOwnSettings() {
    self.write(.settings(self.localSettings.pairs))
    let raise = self.config.connectionWindowSize - PeerSettings.initialConnectionWindowSize
    if raise > 0 {
      self.write(.windowUpdate(streamID: 0, increment: UInt32(min(raise, PeerSettings.maximumWindowSize))))
      self.receiveConnectionWindow += raise
    }
  }

  private func handleActive(_ frame: Frame) throws {
    switch frame {
    case .settings:
      throw WireError(.protocolError, "SETTINGS may be sent only once per connection")
    case .settingsAck:
      return
    case .headers(let id, let path, let metadata, let endStream):
      try self.receiveHeaders(id: id, path: path, metadata: metadata, endStream: endStream)
    case .message(let id, let fragment, let flags):
      try self.receiveMessage(id: id, fragment: fragment, flags: flags)
    case .trailers(let id, let status, let metadata):
      try self.receiveTrailers(id: id, status: status, metadata: metadata)
    case .resetStream(let id, let code):
      try self.receiveReset(id: id, code: code)
    case .ping(let data, let ack):
      if ack {
        if data == self.keepaliveData, let timeout = self.keepaliveTimeout {
          timeout.cancel()
          self.keepaliveTimeout = nil
          self.scheduleKeepalivePing()
        }
      } else {
        if self.pingLimiter.record(now: .now()) {
          throw WireError(.enhanceYourCalm, "more than \(self.config.pingRateLimit.maxEvents) PINGs in \(self.config.pingRateLimit.interval)")
        }
        self.write(.ping(data: data, ack: true))
      }
    case .goAway(let last, let code, let debug):
      self.receiveGoAway(lastStreamID: last, code: code, debug: debug)
    case .windowUpdate(let id, let increment):
      try self.receiveWindowUpdate(id: id, increment: Int(increment))
    }
  }

  private func isIdle(_ id: UInt32) -> Bool {
    if self.isServer {
      return id > self.lastPeerStreamID
    } else {
      return id >= self.nextLocalStreamID
    }
  }

  private func receiveHeaders(id: UInt32, path: String, metadata: Metadata, endStream: Bool) throws {
    guard case .server(let onStream) = self.role else {
      // Response headers on a client.
      guard let stream = self.streamsByID[id] else {
        if self.isIdle(id) { throw WireError(.protocolError, "HEADERS on idle stream \(id): servers do not open streams") }
        return  // A stream this client already closed.
      }
      guard !stream.receivedHeaders else {
        throw WireError(.protocolError, "a second HEADERS on stream \(id)", stream: id)
      }
      stream.receivedHeaders = true
      if let name = metadata[stringValues: MessageCompression.encodingKey].first(where: { _ in true }), name != "identity" {
        guard let algorithm = MessageCompression.algorithm(named: name),
          self.config.compression.enabledAlgorithms.contains(algorithm)
        else {
          throw WireError(.internalError, "the server compresses with '\(name.prefix(64))', which this client did not accept", stream: id)
        }
        stream.inboundEncoding = algorithm
      }
      if case .client(let queue) = stream.inbound {
        queue.yield(.metadata(metadata), credit: nil)
      }
      if endStream {
        throw WireError(.protocolError, "response HEADERS with END_STREAM: a response ends with TRAILERS", stream: id)
      }
      return
    }

    if self.streamsByID[id] != nil {
      throw WireError(.protocolError, "a second HEADERS on stream \(id)", stream: id)
    }
    guard id % 2 == 1 else {
      throw WireError(.protocolError, "stream id \(id) is even: clients open odd-numbered streams")
    }
    guard id > self.lastPeerStreamID else {
      throw WireError(.protocolError, "stream id \(id) is not above the last opened stream \(self.lastPeerStreamID) (reused or decreasing)")
    }
    self.lastPeerStreamID = id
    if self.goAwaySent {
      try self.refuse(id, "the server is shutting down; retry on a new connection")
      return
    }
    guard self.streams.count < self.localSettings.maxConcurrentStreams else {
      try self.refuse(id, "more than MAX_CONCURRENT_STREAMS \(self.localSettings.maxConcurrentStreams) streams")
      return
    }
    guard let descriptor = MethodDescriptor(path: path) else {
      throw WireError(.protocolError, "path '\(path.prefix(200))' is not '/package.Service/Method'", stream: id)
    }

    let compression = self.config.compression
    var requestEncoding: CompressionAlgorithm?
    if let name = metadata[stringValues: MessageCompression.encodingKey].first(where: { _ in true }), name != "identity" {
      guard let algorithm = MessageCompression.algorithm(named: name), compression.enabledAlgorithms.contains(algorithm) else {
        // As gRPC: an encoding the server does not accept is answered `unimplemented`, naming
        // the ones it does, before any handler runs.
        let accepted = MessageCompression.acceptEncoding(compression.enabledAlgorithms)
        var trailers = Metadata()
        trailers.addString(accepted, forKey: MessageCompression.acceptEncodingKey)
        self.write(
          .trailers(
            streamID: id,
            status: Status(code: .unimplemented, message: "Compression algorithm '\(name.prefix(64))' is not supported; this server accepts \(accepted)."),
            metadata: trailers
          )
        )
        self.rememberClosed(id)
        return
      }
      requestEncoding = algorithm
    }
    var responseCompression: CompressionAlgorithm?
    if compression.responseAlgorithm != .none,
      compression.enabledAlgorithms.contains(compression.responseAlgorithm),
      MessageCompression.parseAcceptEncoding(metadata).contains(compression.responseAlgorithm)
    {
      responseCompression = compression.responseAlgorithm
    }

    let key = UInt64(id)
    let queue = InboundQueue<RPCRequestPart<WireBytes>>(onConsume: self.makeCreditCallback(key: key), budget: self.inboundBudget)
    let slot = CancellationSlot()
    let stream = StreamRecord(
      key: key,
      id: id,
      inbound: .server(queue, slot),
      sendWindow: self.peerSettings.initialWindowSize,
      receiveWindow: self.localSettings.initialWindowSize
    )
    stream.receivedHeaders = true
    stream.inboundEncoding = requestEncoding
    self.streams[key] = stream
    self.streamsByID[id] = stream
    self.idleTimer?.cancel()
    self.idleTimer = nil
    queue.yield(.metadata(metadata), credit: nil)
    if endStream {
      stream.remoteClosed = true
      queue.finish()
    } else if let timeout = self.config.requestTimeout {
      stream.requestTimer = self.context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
        self.requestTimedOut(stream, after: timeout)
      }
    }
    onStream(
      ServerStreamStart(
        descriptor: descriptor,
        inbound: queue,
        handle: StreamHandle(key: key, connection: self.makeHandle()),
        cancellation: slot,
        responseCompression: responseCompression,
        peer: self.peerIdentity,
        remoteAddress: self.remoteAddress,
        localAddress: self.localAddress
      )
    )
  }

  private func refuse(_ id: UInt32, _ reason: String) throws {
    if self.resetLimiter.record(now: .now()) {
      throw WireError(.enhanceYourCalm, "too many refused streams")
    }
    self.logger.debug("Refusing stream", metadata: ["stream": "\(id)", "reason": "\(reason)"])
    self.write(.resetStream(streamID: id, code: .refusedStream))
    self.rememberClosed(id)
  }

  private func receiveMessage(id: UInt32, fragment: ByteBuffer, flags: FrameFlags) throws {
    let length = fragment.readableBytes
    // Connection-level flow control counts every MESSAGE, whatever becomes of it.
    guard length <= self.receiveConnectionWindow else {
      throw WireError(.flowControlError, "MESSAGE of \(length) octets exceeds the connection window \(self.receiveConnectionWindow)")
    }
    self.receiveConnectionWindow -= length
    self.creditConnection(length)

    guard let stream = self.streamsByID[id] else {
      if self.isIdle(id) {
        throw WireError(.protocolError, "MESSAGE on idle stream \(id) (message before HEADERS)")
      }
      if self.recentlyClosed.contains(id) { return }
      throw WireError(.streamClosed, "MESSAGE on closed stream \(id)", stream: id)
    }
    guard !stream.remoteClosed else {
      throw WireError(.streamClosed, "MESSAGE on stream \(id) after its END_STREAM", stream: id)
    }
    guard stream.receivedHeaders else {
      throw WireError(.protocolError, "MESSAGE on stream \(id) before the response HEADERS", stream: id)
    }
    guard length <= stream.receiveWindow else {
      // A connection error, as for the connection window: the peer's flow-control accounting is broken.
      throw WireError(.flowControlError, "MESSAGE of \(length) octets exceeds stream \(id)'s window \(stream.receiveWindow)")
    }
    stream.receiveWindow -= length
    let compressed = flags.contains(.compressed)
    if stream.partial == nil {
      stream.partialCompressed = compressed
    } else if stream.partialCompressed != compressed {
      throw WireError(.protocolError, "COMPRESSED flag differs between fragments of one message on stream \(id)", stream: id)
    }
    if compressed && stream.inboundEncoding == nil {
      throw WireError(.internalError, "compressed MESSAGE on stream \(id) but no grpc-encoding was negotiated", stream: id)
    }

    let endMessage = flags.contains(.endMessage)
    let endStream = flags.contains(.endStream)
    if endMessage || endStream { self.requestArrived(stream) }
    if stream.discardingInbound {
      self.creditStream(stream, length)
    } else if stream.partialBytes + length > self.config.maxMessageSize {
      self.messageTooLarge(
        stream,
        uncredited: length + stream.partialBytes - stream.partialCredited,
        "Message exceeds the maximum message size of \(self.config.maxMessageSize) bytes; send smaller messages or raise maxMessageSize."
      )
      if !self.isServer { return }
    } else if let refusal = self.inboundBudget.reserve(length) {
      // Never buffered past the budget: this message fails its RPC and the rest of it is discarded.
      self.messageTooLarge(stream, uncredited: length + stream.partialBytes - stream.partialCredited, refusal.message)
      if !self.isServer { return }
    } else if endMessage {
      stream.reservedBytes += length
      var message: ByteBuffer
      if var partial = stream.partial {
        var fragment = fragment
        partial.writeBuffer(&fragment)
        message = partial
      } else {
        message = fragment
      }
      let uncredited = stream.partialBytes + length - stream.partialCredited
      if stream.partialCompressed, let encoding = stream.inboundEncoding {
        do {
          message = try MessageCompression.decompress(message, with: encoding, limit: self.config.maxMessageSize)
        } catch .tooLarge {
          // Stopped at the limit: a small frame that inflates to gigabytes costs at most the limit.
          self.messageTooLarge(
            stream,
            uncredited: uncredited,
            "Message decompresses to more than the maximum message size of \(self.config.maxMessageSize) bytes."
          )
          if !self.isServer { return }
          return try self.finishMessageFrame(stream, id: id, endStream: endStream)
        } catch .corrupt {
          throw WireError(.internalError, "message on stream \(id) is not valid \(MessageCompression.name(of: encoding) ?? "") data", stream: id)
        }
        // The budget counts what is held: the inflated message, not the frames it came in.
        if let refusal = self.inboundBudget.reserve(message.readableBytes - stream.reservedBytes) {
          self.messageTooLarge(stream, uncredited: uncredited, refusal.message)
          if !self.isServer { return }
          return try self.finishMessageFrame(stream, id: id, endStream: endStream)
        }
        stream.reservedBytes = max(stream.reservedBytes, message.readableBytes)
      }
      stream.partial = nil
      stream.partialBytes = 0
      stream.partialCredited = 0
      stream.unreadMessages += 1
      // The reservation moves to the queue, which releases it when the message is read or dropped.
      let bytes = stream.reservedBytes
      stream.reservedBytes = 0
      switch stream.inbound {
      case .server(let queue, _): queue.yield(.message(WireBytes(message)), credit: uncredited, bytes: bytes)
      case .client(let queue): queue.yield(.message(WireBytes(message)), credit: uncredited, bytes: bytes)
      }
      message = ByteBuffer()
    } else if length > 0 || !endStream {
      stream.reservedBytes += length
      if stream.partial == nil {
        var buffer = self.context.channel.allocator.buffer(capacity: min(self.config.maxMessageSize, max(length * 4, 1024)))
        var fragment = fragment
        buffer.writeBuffer(&fragment)
        stream.partial = buffer
      } else {
        var fragment = fragment
        stream.partial!.writeBuffer(&fragment)
      }
      stream.partialBytes += length
      if stream.unreadMessages == 0 {
        stream.partialCredited += length
        self.creditStream(stream, length)
      }
    }

    try self.finishMessageFrame(stream, id: id, endStream: endStream)
  }

  /// The stream's reader fails with `resourceExhausted`; the rest of the message is discarded.
  private func messageTooLarge(_ stream: StreamRecord, uncredited: Int, _ message: String) {
    stream.discardingInbound = true
    self.dropPartial(stream)
    self.creditStream(stream, uncredited)
    stream.partialBytes = 0
    stream.partialCredited = 0
    let error = RPCError(code: .resourceExhausted, message: message)
    if self.isServer {
      // The handler reads the error after what came before it (the metadata, if the handler has
      // not started yet) and GRPCCore answers it as the RPC's status.
      if case .server(let queue, _) = stream.inbound { queue.fail(afterQueued: error) }
    } else {
      stream.failInbound(error)
      self.resetStream(stream, code: .cancel)
    }
  }

  /// Forgets the message being assembled on `stream`, giving its octets back to the budget.
  private func dropPartial(_ stream: StreamRecord) {
    stream.partial = nil
    self.inboundBudget.release(stream.reservedBytes)
    stream.reservedBytes = 0
  }

  /// The request arrived (its first message ended, or the stream did): the request timer stops.
  private func requestArrived(_ stream: StreamRecord) {
    stream.requestTimer?.cancel()
    stream.requestTimer = nil
  }

  /// A stream whose request did not arrive in time: its reader fails with `deadlineExceeded` (the handler
  /// answers with that status) and whatever the peer still sends on it is discarded.
  private func requestTimedOut(_ stream: StreamRecord, after timeout: Duration) {
    stream.requestTimer = nil
    guard self.streams[stream.key] === stream, !stream.remoteClosed, !stream.discardingInbound else { return }
    self.logger.debug("Request did not arrive in time", metadata: ["stream": "\(stream.id)", "peer": "\(self.remoteAddress)"])
    stream.discardingInbound = true
    self.creditStream(stream, stream.partialBytes - stream.partialCredited)
    self.dropPartial(stream)
    stream.partialBytes = 0
    stream.partialCredited = 0
    let error = RPCError(
      code: .deadlineExceeded,
      message: "The request did not arrive within the server's request timeout of \(timeout) "
        + "(from its HEADERS to the end of its first message); send the request promptly after opening the stream."
    )
    if case .server(let queue, _) = stream.inbound { queue.fail(afterQueued: error) }
    self.flushIfNeeded()
  }

  private func finishMessageFrame(_ stream: StreamRecord, id: UInt32, endStream: Bool) throws {
    if endStream {
      guard self.isServer else {
        throw WireError(.protocolError, "MESSAGE with END_STREAM from a server: a response ends with TRAILERS", stream: id)
      }
      if stream.partial != nil {
        throw WireError(.protocolError, "stream \(id) ended in the middle of a message", stream: id)
      }
      stream.remoteClosed = true
      stream.finishInbound()
      self.closeIfDone(stream)
    }
  }

  private func receiveTrailers(id: UInt32, status: Status, metadata: Metadata) throws {
    guard !self.isServer else {
      throw WireError(.protocolError, "TRAILERS from a client")
    }
    guard let stream = self.streamsByID[id] else {
      if self.isIdle(id) { throw WireError(.protocolError, "TRAILERS on idle stream \(id)") }
      return
    }
    if stream.partial != nil {
      throw WireError(.protocolError, "TRAILERS on stream \(id) in the middle of a message", stream: id)
    }
    stream.remoteClosed = true
    if case .client(let queue) = stream.inbound, !stream.discardingInbound {
      queue.yield(.status(status, metadata), credit: nil)
      queue.finish()
    }
    // The server is done: whatever this side still had to send is moot.
    stream.localClosed = true
    stream.failPending(RPCError(code: .cancelled, message: "The server already ended the RPC."))
    self.removeStream(stream)
  }

  private func receiveReset(id: UInt32, code: WireErrorCode) throws {
    if self.resetLimiter.record(now: .now()) {
      throw WireError(.enhanceYourCalm, "more than \(self.config.resetRateLimit.maxEvents) stream resets in \(self.config.resetRateLimit.interval)")
    }
    guard let stream = self.streamsByID[id] else {
      if self.isIdle(id) { throw WireError(.protocolError, "RST_STREAM on idle stream \(id)") }
      return
    }
    let error = Self.rpcError(forReset: code, stream: id)
    stream.failInbound(error)
    stream.failPending(error)
    stream.localClosed = true
    stream.remoteClosed = true
    self.removeStream(stream)
  }

  private func receiveGoAway(lastStreamID: UInt32, code: WireErrorCode, debug: String) {
    self.logger.debug("GOAWAY received", metadata: ["last": "\(lastStreamID)", "code": "\(code)", "debug": "\(debug)"])
    self.goAwayReceived = min(self.goAwayReceived ?? lastStreamID, lastStreamID)
    self.notifyDraining()
    if !self.isServer {
      // Streams above the last one the server accepted were never processed: safe to retry.
      let unprocessed = self.streams.values.filter { $0.id == 0 || $0.id > lastStreamID }
      for stream in unprocessed {
        let error = RPCError(
          code: .unavailable,
          message: "The server is going away (\(code)) and did not process this RPC; it is safe to retry."
        )
        stream.failInbound(error)
        stream.failPending(error)
        self.removeStream(stream)
      }
      for waiting in self.waitingOpens {
        waiting.completion(.failure(RPCError(code: .unavailable, message: "The server is going away; retry on a new connection.")))
      }
      self.waitingOpens.removeAll()
    }
    if code != .noError {
      self.closeReason = RPCError(code: .unavailable, message: "The server closed the connection: \(code) \(debug)")
    }
    self.closeWhenIdle = true
    self.closeIfIdle()
  }

  private func receiveWindowUpdate(id: UInt32, increment: Int) throws {
    if id == 0 {
      guard self.sendConnectionWindow + increment <= PeerSettings.maximumWindowSize else {
        throw WireError(.flowControlError, "WINDOW_UPDATE overflows the connection window past 2^31-1")
      }
      self.sendConnectionWindow += increment
      self.drain()
      return
    }
    guard let stream = self.streamsByID[id] else {
      if self.isIdle(id) { throw WireError(.protocolError, "WINDOW_UPDATE on idle stream \(id)") }
      return
    }
    guard stream.sendWindow + increment <= PeerSettings.maximumWindowSize else {
      throw WireError(.flowControlError, "WINDOW_UPDATE overflows stream \(id)'s window past 2^31-1", stream: id)
    }
    stream.sendWindow += increment
    if !stream.pending.isEmpty { self.markReady(stream) }
    self.drain()
  }

  // MARK: - Flow-control credit

  private func makeCreditCallback(key: UInt64) -> @Sendable (Int) -> Void {
    let connection = self.makeHandle()
    return { credit in
      connection.execute { handler in
        guard let stream = handler.streams[key] else { return }
        stream.unreadMessages -= 1
        handler.creditStream(stream, credit)
        if stream.unreadMessages == 0 && stream.partialBytes > stream.partialCredited {
          let owed = stream.partialBytes - stream.partialCredited
          stream.partialCredited = stream.partialBytes
          handler.creditStream(stream, owed)
        }
        handler.flushIfNeeded()
      }
    }
  }

  private func creditStream(_ stream: StreamRecord, _ amount: Int) {
    guard amount > 0, !stream.remoteClosed else { return }
    stream.pendingCredit += amount
    if stream.pendingCredit >= max(1, self.localSettings.initialWindowSize / 2) {
      stream.receiveWindow += stream.pendingCredit
      self.write(.windowUpdate(streamID: stream.id, increment: UInt32(stream.pendingCredit)))
      stream.pendingCredit = 0
    }
  }

  private func creditConnection(_ amount: Int) {
    guard amount > 0 else { return }
    self.pendingConnectionCredit += amount
    if self.pendingConnectionCredit >= self.config.connectionWindowSize / 2 {
      self.receiveConnectionWindow += self.pendingConnectionCredit
      self.write(.windowUpdate(streamID: 0, increment: UInt32(self.pendingConnectionCredit)))
      self.pendingConnectionCredit = 0
    }
  }

  // MARK: - Errors

  /// Answers a stream error with `RST_STREAM` and ends the stream; the connection goes on.
  private func streamError(_ error: WireError, countsAsAbuse: Bool) {
    guard case .stream(let id) = error.scope else { return self.connectionError(error) }
    if countsAsAbuse && self.resetLimiter.record(now: .now()) {
      return self.connectionError(WireError(.enhanceYourCalm, "too many stream errors"))
    }
    self.logger.debug("Stream error", metadata: ["stream": "\(id)", "error": "\(error)"])
    if let stream = self.streamsByID[id] {
      let rpcError = RPCError(code: .internalError, message: "The peer broke the protocol: \(error.message)")
      stream.failInbound(rpcError)
      stream.failPending(rpcError)
      self.resetStream(stream, code: error.code)
    } else {
      if self.isServer && id > self.lastPeerStreamID {
        // A rejected HEADERS still uses up its stream id, so it cannot be reused.
        guard id % 2 == 1 else {
          return self.connectionError(WireError(.protocolError, "stream id \(id) is even: clients open odd-numbered streams"))
        }
        self.lastPeerStreamID = id
      }
      self.write(.resetStream(streamID: id, code: error.code))
      self.rememberClosed(id)
      self.markFlush()
    }
  }

  /// Answers a connection error with `GOAWAY` and closes.
  func connectionError(_ error: WireError) {
    guard self.phase != .closed else { return }
    self.logger.info("Closing connection on a protocol error", metadata: ["peer": "\(self.remoteAddress)", "error": "\(error)"])
    let last = self.isServer ? self.lastPeerStreamID : 0
    if self.closeReason == nil {
      self.closeReason = RPCError(code: .unavailable, message: "Connection closed: \(error)")
    }
    self.write(.goAway(lastStreamID: last, code: error.code, debug: error.message))
    self.goAwaySent = true
    if case .client(let ready) = self.role { ready.fail(self.closeReason!) }
    self.flushNow()
    self.closeChannel()
  }

  static func rpcError(forReset code: WireErrorCode, stream: UInt32) -> RPCError {
    switch code {
    case .refusedStream:
      RPCError(code: .unavailable, message: "The server refused the stream without processing it; it is safe to retry.")
    case .cancel:
      RPCError(code: .cancelled, message: "The RPC was cancelled by the peer.")
    case .enhanceYourCalm:
      RPCError(code: .resourceExhausted, message: "The peer reset the stream: \(code) (too much load).")
    case .metadataTooLarge:
      RPCError(code: .resourceExhausted, message: "The peer reset the stream: metadata exceeds its MAX_METADATA_SIZE.")
    case .messageTooLarge:
      RPCError(code: .resourceExhausted, message: "The peer reset the stream: a message exceeds its size limit.")
    default:
      RPCError(code: .internalError, message: "The peer reset stream \(stream): \(code).")
    }
  }

  // MARK: - Streams

  /// Opens a client stream, waiting while the server's concurrency limit is reached.
  func openStream(completion: @escaping (Result<StreamRecord, any Error>) -> Void) {
    guard self.phase == .active, self.goAwayReceived == nil, !self.goAwaySent, !self.closeWhenIdle else {
      completion(.failure(RPCError(code: .unavailable, message: "The connection is draining; retry on a new connection.")))
      return
    }
    let key = self.nextKey
    self.nextKey += 1
    let make = { [self] () -> StreamRecord in
      let queue = InboundQueue<RPCResponsePart<WireBytes>>(onConsume: self.makeCreditCallback(key: key), budget: self.inboundBudget)
      return StreamRecord(
        key: key,
        id: 0,
        inbound: .client(queue),
        sendWindow: self.peerSettings.initialWindowSize,
        receiveWindow: self.localSettings.initialWindowSize
      )
    }
    if self.streams.count < self.peerSettings.maxConcurrentStreams {
      let stream = make()
      self.streams[key] = stream
      self.idleTimer?.cancel()
      self.idleTimer = nil
      completion(.success(stream))
    } else {
      self.waitingOpens.append((key, completion, make))
    }
  }

  /// Queues a part to send on a stream.
  func enqueue(key: UInt64, item: OutboundItem, promise: EventLoopPromise<Void>?) {
    guard let stream = self.streams[key], !stream.localClosed else {
      // The stream ended (the peer reset or answered it): the write has nowhere to go.
      promise?.fail(RPCError(code: .cancelled, message: "The stream is closed."))
      return
    }
    switch item {
    case .headers:
      if !self.isServer && stream.id == 0 {
        guard self.nextLocalStreamID <= FrameHeader.maxStreamID else {
          promise?.fail(RPCError(code: .unavailable, message: "Stream ids on this connection are used up; retry on a new connection."))
          self.closeWhenIdle = true
          self.notifyDraining()
          return
        }
        stream.id = self.nextLocalStreamID
        self.nextLocalStreamID += 2
        self.streamsByID[stream.id] = stream
      }
    case .endStream, .trailers:
      stream.localClosed = true
    case .message:
      break
    }
    stream.pending.append((item, promise))
    self.markReady(stream)
    self.drain()
    self.markFlush()
  }

  /// Ends a stream from the async side: the client's RPC finished or was cancelled, or the
  /// server handler returned without a status.
  func closeStream(key: UInt64) {
    guard let stream = self.streams[key] else { return }
    if stream.localClosed && stream.remoteClosed { return }
    if self.isServer && stream.localClosed {
      // Trailers are queued or sent; the stream ends when they leave.
      return
    }
    let error = RPCError(code: .cancelled, message: "The RPC was cancelled.")
    stream.failInbound(error)
    stream.failPending(error)
    if stream.id != 0 {
      self.resetStream(stream, code: self.isServer ? .internalError : .cancel)
    } else {
      self.removeStream(stream)
    }
    self.flushIfNeeded()
  }

  private func resetStream(_ stream: StreamRecord, code: WireErrorCode) {
    if stream.id != 0 {
      self.write(.resetStream(streamID: stream.id, code: code))
      self.rememberClosed(stream.id)
    }
    stream.localClosed = true
    stream.remoteClosed = true
    self.removeStream(stream)
    self.markFlush()
  }

  private func rememberClosed(_ id: UInt32) {
    if self.recentlyClosed.count == 64 { self.recentlyClosed.removeFirst() }
    self.recentlyClosed.append(id)
  }

  private func closeIfDone(_ stream: StreamRecord) {
    if stream.localClosed && stream.remoteClosed && stream.pending.isEmpty {
      self.removeStream(stream)
    }
  }

  private func removeStream(_ stream: StreamRecord) {
    guard self.streams.removeValue(forKey: stream.key) != nil else { return }
    if stream.id != 0 { self.streamsByID.removeValue(forKey: stream.id) }
    self.requestArrived(stream)
    self.dropPartial(stream)
    // Writers still waiting on this stream learn it is gone rather than wait forever.
    stream.failPending(RPCError(code: .cancelled, message: "The stream is closed."))
    // A draining connection admits no waiting stream: receiveGoAway fails them instead.
    while self.goAwayReceived == nil, !self.closeWhenIdle,
      self.streams.count < self.peerSettings.maxConcurrentStreams,
      let waiting = self.waitingOpens.popFirst()
    {
      let next = waiting.make()
      self.streams[waiting.key] = next
      waiting.completion(.success(next))
    }
    if self.streams.isEmpty {
      self.closeIfIdle()
      if self.phase == .active { self.armIdleTimer() }
    }
  }

  // MARK: - Writing

  private func markReady(_ stream: StreamRecord) {
    guard !stream.isReady else { return }
    stream.isReady = true
    self.readyStreams.append(stream)
  }

  /// Writes queued parts round-robin, one message fragment per stream per turn, while windows
  /// and the channel allow.
  private func drain() {
    guard self.phase == .active || self.phase == .awaitingSettings else { return }
    while let stream = self.readyStreams.popFirst() {
      stream.isReady = false
      guard self.streams[stream.key] != nil else { continue }
      switch self.writeSome(stream) {
      case .more:
        self.markReady(stream)
      case .blockedOnConnection:
        // Put it back first in line and stop: nothing can move until the window opens.
        stream.isReady = true
        self.readyStreams.prepend(stream)
        return
      case .blockedOnStream, .empty:
        break
      }
      if !self.context.channel.isWritable {
        return
      }
    }
  }

  private enum WriteOutcome {
    case more
    case empty
    case blockedOnStream
    case blockedOnConnection
  }

  private func writeSome(_ stream: StreamRecord) -> WriteOutcome {
    while let head = stream.pending.first {
      switch head.item {
      case .headers(let path, let metadata):
        if let problem = MetadataCodec.problem(in: metadata) {
          self.failUnsendableHeaders(stream, problem, code: .invalidArgument)
          return .empty
        }
        if let problem = self.headersProblem(path: path, metadata: metadata) {
          self.failUnsendableHeaders(stream, problem, code: .resourceExhausted)
          return .empty
        }
        stream.sentHeaders = true
        self.write(.headers(streamID: stream.id, path: path, metadata: metadata, endStream: false))
        stream.pending.removeFirst()
        head.promise?.succeed()
      case .trailers(var status, var metadata):
        if let problem = self.trailersProblem(status: status, metadata: metadata) {
          // The status still goes out, without what the client could not take (docs/PROTOCOL.md §9.2): code
          // INTERNAL, no metadata, the message cut to the client's limits. A client whose limits cannot take
          // even an empty message gets RST_STREAM(METADATA_TOO_LARGE) instead.
          metadata = [:]
          guard let fitting = self.replacementStatus("The server could not send the RPC's status: \(problem)") else {
            stream.pending.removeFirst()
            head.promise?.succeed()
            stream.finishInbound()
            self.resetStream(stream, code: .metadataTooLarge)
            return .empty
          }
          status = fitting
        }
        self.write(.trailers(streamID: stream.id, status: status, metadata: metadata))
        stream.pending.removeFirst()
        head.promise?.succeed()
        // A server is done with the stream once its trailers leave.
        stream.remoteClosed = true
        stream.finishInbound()
        self.rememberClosed(stream.id)
        self.removeStream(stream)
        return .empty
      case .endStream:
        self.prepareOutBuffer()
        FrameEncoder.writeHeader(length: 0, type: .message, flags: .endStream, streamID: stream.id, into: &self.outBuffer)
        stream.pending.removeFirst()
        head.promise?.succeed()
        self.closeIfDone(stream)
        return .empty
      case .message(let message, let compressed):
        let remaining = message.readableBytes - stream.headSent
        let allowance = min(remaining, self.peerSettings.maxFrameSize, stream.sendWindow, self.sendConnectionWindow)
        if remaining > 0 && allowance == 0 {
          return self.sendConnectionWindow == 0 ? .blockedOnConnection : .blockedOnStream
        }
        let isLast = allowance == remaining
        // Within the message by construction (allowance ≤ remaining); our own data, not the peer's.
        guard let fragment = message.getSlice(at: message.readerIndex + stream.headSent, length: allowance) else {
          preconditionFailure("fragment outside its message")
        }
        var flags: FrameFlags = isLast ? .endMessage : []
        if compressed { flags.insert(.compressed) }
        self.writeMessageFragment(stream.id, fragment, flags: flags)
        stream.sendWindow -= allowance
        self.sendConnectionWindow -= allowance
        if isLast {
          stream.headSent = 0
          stream.pending.removeFirst()
          head.promise?.succeed()
        } else {
          stream.headSent += allowance
        }
        return stream.pending.isEmpty ? .empty : .more
      }
    }
    return .empty
  }

  /// Why `HEADERS` with this metadata cannot be sent to the peer, if it cannot: the sender
  /// checks the peer's limits so one call's oversized metadata fails that call, not the connection.
  private func headersProblem(path: String, metadata: Metadata) -> String? {
    let block = MetadataCodec.encodedLength(of: metadata)
    if block > self.peerSettings.maxMetadataSize {
      return "metadata of \(block) bytes exceeds the peer's MAX_METADATA_SIZE of \(self.peerSettings.maxMetadataSize) bytes"
    }
    if 2 + path.utf8.count + block > self.peerSettings.maxFrameSize {
      return "metadata of \(block) bytes does not fit the peer's MAX_FRAME_SIZE of \(self.peerSettings.maxFrameSize) bytes"
    }
    return nil
  }

  private func trailersProblem(status: Status, metadata: Metadata) -> String? {
    if let problem = MetadataCodec.problem(in: metadata) { return problem }
    let message = min(status.message.utf8.count, FrameEncoder.maxStatusMessageLength)
    let block = message + MetadataCodec.encodedLength(of: metadata)
    if block > self.peerSettings.maxMetadataSize || 3 + block > self.peerSettings.maxFrameSize {
      return "trailing metadata of \(block) bytes exceeds the client's limits (MAX_METADATA_SIZE \(self.peerSettings.maxMetadataSize), MAX_FRAME_SIZE \(self.peerSettings.maxFrameSize))"
    }
    return nil
  }

  /// An `INTERNAL` status saying `text`, cut to what the client's limits leave for a status message with no
  /// metadata; `nil` if not even an empty one fits (then the stream is reset with `METADATA_TOO_LARGE`,
  /// docs/PROTOCOL.md §9.2).
  private func replacementStatus(_ text: String) -> Status? {
    let room = min(self.peerSettings.maxMetadataSize, self.peerSettings.maxFrameSize - 3) - MetadataCodec.encodedLength(of: [:])
    guard room >= 0 else { return nil }
    let message = FrameEncoder.clampedUTF8(text, maxLength: min(room, FrameEncoder.maxStatusMessageLength))
    return Status(code: .internalError, message: String(decoding: message, as: UTF8.self))
  }

  /// Ends a stream whose `HEADERS` cannot be sent. A client fails the call locally (its stream id
  /// is skipped, which the protocol allows); a server answers with a status instead.
  private func failUnsendableHeaders(_ stream: StreamRecord, _ problem: String, code: RPCError.Code) {
    if self.isServer {
      let text = "The server could not send its response metadata: \(problem)"
      if let status = self.replacementStatus(text) {
        self.write(.trailers(streamID: stream.id, status: status, metadata: [:]))
      } else {
        self.write(.resetStream(streamID: stream.id, code: .metadataTooLarge))
      }
      self.rememberClosed(stream.id)
      let error = RPCError(code: .internalError, message: text)
      stream.localClosed = true
      stream.remoteClosed = true
      stream.failInbound(error)
      stream.failPending(error)
    } else {
      let error = RPCError(code: code, message: "The request cannot be sent: \(problem).")
      stream.localClosed = true
      stream.remoteClosed = true
      stream.failInbound(error)
      stream.failPending(error)
    }
    self.removeStream(stream)
  }

  /// Small fragments are copied into the coalescing buffer; large ones go out as slices of the
  /// message, with no copy.
  private func writeMessageFragment(_ id: UInt32, _ fragment: ByteBuffer, flags: FrameFlags) {
    self.prepareOutBuffer()
    FrameEncoder.writeHeader(length: fragment.readableBytes, type: .message, flags: flags, streamID: id, into: &self.outBuffer)
    if fragment.readableBytes < 4096 {
      var fragment = fragment
      self.outBuffer.writeBuffer(&fragment)
    } else {
      self.emitOutBuffer()
      self.context?.write(self.wrapOutboundOut(fragment), promise: nil)
    }
    self.markFlush()
  }

  private func write(_ frame: Frame) {
    self.prepareOutBuffer()
    FrameEncoder.encode(frame, into: &self.outBuffer)
    self.markFlush()
  }

  private func emitOutBuffer() {
    guard self.outBuffer.readableBytes > 0 else { return }
    guard let context = self.context else {
      // Removed from its pipeline: nowhere to write.
      self.outBuffer.moveReaderIndex(to: self.outBuffer.writerIndex)
      return
    }
    context.write(self.wrapOutboundOut(self.outBuffer), promise: nil)
    // Marked consumed rather than replaced: once the TLS handler has encrypted it (on flush) and let
    // go, `prepareOutBuffer` reuses its storage instead of allocating a new buffer per flush.
    self.outBuffer.moveReaderIndex(to: self.outBuffer.writerIndex)
  }

  /// Makes `outBuffer` ready for writing: allocated if it was released, rewound (reused in place
  /// when nothing else holds it, else a fresh storage of the same size) if it was emitted.
  private func prepareOutBuffer() {
    guard self.outBuffer.readableBytes == 0 else { return }
    if self.outBuffer.capacity == 0 {
      self.outBuffer = (self.context?.channel.allocator ?? ByteBufferAllocator()).buffer(capacity: 4096)
    } else if self.outBuffer.writerIndex > 0 {
      self.outBuffer.clear()
    }
  }

  private func markFlush() {
    self.flushPending = true
    if self.outBuffer.readableBytes >= 65_536 { self.emitOutBuffer() }
  }

  /// Flushes now unless inside a read burst, whose end flushes once for all of it.
  func flushIfNeeded() {
    guard self.flushPending, !self.inReadLoop else { return }
    self.flushNow()
  }

  /// Coalesces flushes of writes arriving from many tasks into one per event-loop turn.
  func scheduleFlush() {
    guard !self.flushScheduled, self.flushPending, self.context != nil else { return }
    self.flushScheduled = true
    self.context.eventLoop.assumeIsolated().execute {
      self.flushScheduled = false
      self.flushIfNeeded()
    }
  }

  private func flushNow() {
    guard self.context != nil else { return }
    self.flushPending = false
    self.emitOutBuffer()
    self.context.flush()
    if self.streams.isEmpty && self.outBuffer.readableBytes == 0 {
      // An idle connection keeps no out buffer (memory per idle connection); the next write allocates
      // one. (Checked again after the flush: a handler it reached may have written more.)
      self.outBuffer = ByteBuffer()
    }
  }

  // MARK: - Lifecycle

  private func startTimers() {
    self.armIdleTimer()
    self.scheduleKeepalivePing()
  }

  private func scheduleKeepalivePing() {
    guard let keepalive = self.config.keepalive, self.phase == .active else { return }
    self.keepaliveTask = self.context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(keepalive.interval)) { [self] in
      guard self.phase == .active else { return }
      self.keepaliveData &+= 1
      self.write(.ping(data: self.keepaliveData, ack: false))
      self.flushNow()
      self.keepaliveTimeout = self.context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(keepalive.timeout)) {
        self.logger.info("Keepalive ping unanswered; closing", metadata: ["peer": "\(self.remoteAddress)"])
        self.closeReason = RPCError(code: .unavailable, message: "The peer did not answer a keepalive ping within \(keepalive.timeout).")
        self.closeChannel()
      }
    }
  }

  private func armIdleTimer() {
    guard let timeout = self.config.idleTimeout, self.streams.isEmpty, self.idleTimer == nil else { return }
    self.idleTimer = self.context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
      self.idleTimer = nil
      guard self.streams.isEmpty else { return }
      self.logger.debug("Closing idle connection", metadata: ["peer": "\(self.remoteAddress)"])
      self.sendGoAway(code: .noError, debug: "idle for \(timeout)")
      self.closeReason = RPCError(code: .unavailable, message: "The connection was closed after being idle.")
      self.flushNow()
      self.closeChannel()
    }
  }

  private func sendGoAway(code: WireErrorCode, debug: String) {
    guard !self.goAwaySent else { return }
    self.goAwaySent = true
    self.write(.goAway(lastStreamID: self.isServer ? self.lastPeerStreamID : 0, code: code, debug: debug))
    self.notifyDraining()
  }

  /// Graceful shutdown: no new streams; in-flight ones finish; then the connection closes.
  func beginGracefulShutdown() {
    guard self.phase != .closed else { return }
    if self.phase != .active {
      self.closeChannel()
      return
    }
    if self.isServer {
      self.sendGoAway(code: .noError, debug: "server shutting down")
    } else {
      // A client says GOAWAY(0) once its last call is done (closeIfIdle), PROTOCOL.md §13.
      self.notifyDraining()
    }
    self.closeWhenIdle = true
    self.flushNow()
    self.closeIfIdle()
  }

  private func closeIfIdle() {
    guard self.closeWhenIdle, self.streams.isEmpty else { return }
    if !self.isServer { self.sendGoAway(code: .noError, debug: "client done") }
    self.flushNow()
    self.closeChannel()
  }

  private func notifyDraining() {
    guard !self.drainingNotified else { return }
    self.drainingNotified = true
    self.onDraining?()
  }

  private func closeChannel() {
    guard self.phase != .closed else { return }
    self.phase = .closed
    self.context?.close(promise: nil)
  }

  private func tearDown(reason: RPCError) {
    self.phase = .closed
    self.handshakeTimer?.cancel()
    self.idleTimer?.cancel()
    self.keepaliveTask?.cancel()
    self.keepaliveTimeout?.cancel()
    self.notifyDraining()
    let error = RPCError(code: .unavailable, message: reason.message, cause: reason.cause)
    for stream in self.streams.values {
      stream.failInbound(error)
      stream.failPending(error)
      self.requestArrived(stream)
      self.dropPartial(stream)
    }
    self.streams.removeAll()
    self.streamsByID.removeAll()
    for waiting in self.waitingOpens { waiting.completion(.failure(error)) }
    self.waitingOpens.removeAll()
    if case .client(let ready) = self.role { ready.fail(error) }
  }

  var handlerEventLoop: any EventLoop { self.context.eventLoop }

  func makeHandle() -> ConnectionHandle {
    ConnectionHandle(handler: NIOLoopBound(self, eventLoop: self.context.eventLoop))
  }

  private static func describe(_ address: SocketAddress?) -> String {
    guard let address else { return "unknown" }
    switch address {
    case .v4(let v4): return "ipv4:\(v4.host):\(address.port ?? 0)"
    case .v6(let v6): return "ipv6:[\(v6.host)]:\(address.port ?? 0)"
    case .unixDomainSocket: return "unix:\(address.pathname ?? "")"
    }
  }

  static func describeError(_ error: any Error) -> String {
    if let error = error as? NIOSSLError {
      switch error {
      case .handshakeFailed(let inner):
        return "TLS handshake failed: \(inner)"
      default:
        return "TLS error: \(error)"
      }
    }
    if error is BoringSSLError || error is NIOSSLExtraError {
      return "TLS error: \(error)"
    }
    return "\(error)"
  }
}

