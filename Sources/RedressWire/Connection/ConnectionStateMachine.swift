import GRPCCore
import Logging
import NIOCore

/// The Redress wire protocol of one connection (docs/PROTOCOL.md), with no I/O: it takes frames and events and
/// says what to do about them as ``Action``s, which ``ConnectionHandler`` performs on the channel.
///
/// Everything a peer can influence is decided here: the handshake, stream states and ids, both directions'
/// flow-control windows, the inbound buffer budgets (``InboundBudget``), the request-arrival timeout, message
/// assembly, size limits and decompression, resets, GOAWAY and draining, and the abuse limits. Timers are the
/// handler's: the machine asks for one to be armed or cancelled and is told when it fires, so tests drive time
/// by hand. The layout follows swift-nio-http2 and grpc-swift-nio-transport, which split each connection the
/// same way; `ConnectionStateMachineTests` tests it without a channel.
///
/// Not thread-safe: it lives on its connection's event loop, inside its handler.
struct ConnectionStateMachine {
  enum Role: Sendable {
    /// Accepts streams.
    case server
    /// Opens streams.
    case client
  }

  enum Phase: Sendable {
    case awaitingPreface
    case awaitingSettings
    case active
    case closed
  }

  /// A part received on a stream, for its reader.
  enum InboundPart {
    case metadata(Metadata)
    /// A whole message; `credit` is the flow-control credit to give back (``ConnectionStateMachine/messageRead(key:credit:into:)``)
    /// when it is read and `bytes` what it holds of the ``InboundBudget``, released when it is read or dropped.
    case message(ByteBuffer, credit: Int, bytes: Int)
    /// Clients: the RPC's status.
    case status(Status, Metadata)
  }

  /// What the handler does, in order.
  enum Action {
    /// Writes the preface.
    case writePreface(Preface)
    /// Writes a frame.
    case write(Frame)
    /// Writes one `MESSAGE` frame (the payload may be a slice of a large message: it is not copied).
    case writeMessage(streamID: UInt32, fragment: ByteBuffer, flags: FrameFlags)
    /// Writes the client's half-close: an empty `MESSAGE` with `END_STREAM`.
    case writeEndStream(streamID: UInt32)
    /// Hands everything written to the channel now.
    case flush
    /// Servers: the peer opened a stream; give it a reader and hand it to the server.
    case openStream(key: UInt64, descriptor: MethodDescriptor, responseCompression: CompressionAlgorithm?)
    /// Gives a part to the stream's reader.
    case deliver(key: UInt64, InboundPart)
    /// Ends the stream's reader after what it has been given.
    case finishInbound(key: UInt64)
    /// Fails the stream's reader at once (a server's RPC is also cancelled).
    case failInbound(key: UInt64, RPCError)
    /// Servers: fails the stream's reader after what it has been given (the handler answers with that status).
    case failInboundAfterQueued(key: UInt64, RPCError)
    /// A write the async side waits for has been handed to the channel.
    case succeedWrite(EventLoopPromise<Void>)
    /// A write the async side waits for will never be sent.
    case failWrite(EventLoopPromise<Void>, RPCError)
    /// The stream is gone: its reader and its timers may go.
    case streamClosed(key: UInt64)
    /// Clients: a stream waiting for the server's concurrency limit may open now.
    case admitWaitingStream(key: UInt64)
    /// Clients: a stream waiting to open never will.
    case refuseWaitingStream(key: UInt64, RPCError)
    case armRequestTimer(key: UInt64, Duration)
    case cancelRequestTimer(key: UInt64)
    case armIdleTimer(Duration)
    case cancelIdleTimer
    case cancelHandshakeTimer
    case armKeepaliveTimer(Duration)
    case armKeepaliveTimeout(Duration)
    case cancelKeepaliveTimeout
    /// Clients: the server's preface and settings arrived; streams may open.
    case handshakeCompleted
    /// The connection started draining (a `GOAWAY` was sent or received): report it once.
    case draining
    /// Closes the channel; ``ConnectionStateMachine/closeReason`` says why, when it ended badly.
    case close
    case log(Logger.Level, Logger.Message, Logger.Metadata)
  }

  /// What ``ConnectionStateMachine/openStream(into:)`` did.
  enum OpenResult {
    case opened(key: UInt64)
    /// The server's concurrency limit is reached: ``Action/admitWaitingStream(key:)`` or
    /// ``Action/refuseWaitingStream(key:_:)`` follows.
    case waiting(key: UInt64)
    case refused(RPCError)
  }

  let role: Role
  let config: ConnectionConfig
  let localSettings: PeerSettings
  /// Octets received and not yet read on this connection, drawing on the server's budget too.
  let inboundBudget: InboundBudget
  private(set) var phase = Phase.awaitingPreface
  private(set) var peerSettings = PeerSettings()
  /// Why the connection ended, if it ended badly; surfaced to the client's RPCs.
  private(set) var closeReason: RPCError?
  /// For messages and logs.
  var remoteAddress = "unknown"

  private var streams: [UInt64: StreamRecord] = [:]
  private var streamsByID: [UInt32: StreamRecord] = [:]
  private var nextKey: UInt64 = 1
  private var lastPeerStreamID: UInt32 = 0
  private var nextLocalStreamID: UInt32 = 1
  private var waitingOpens = CircularBuffer<UInt64>()
  /// Ids of streams this side closed while the peer may still be sending on them.
  private var recentlyClosed = CircularBuffer<UInt32>(initialCapacity: 64)

  private var sendConnectionWindow = PeerSettings.initialConnectionWindowSize
  private var receiveConnectionWindow = PeerSettings.initialConnectionWindowSize
  private var pendingConnectionCredit = 0
  private var readyStreams = CircularBuffer<StreamRecord>()

  private var goAwaySent = false
  private var goAwayReceived: UInt32?
  private var drainingNotified = false
  private var closeWhenIdle = false
  private var idleTimerArmed = false
  private var keepaliveData: UInt64 = 0
  private var awaitingKeepaliveAck = false
  private var resetLimiter: RateLimiter
  private var pingLimiter: RateLimiter

  init(role: Role, config: ConnectionConfig, serverBudget: InboundBudget?, now: NIODeadline) {
    self.role = role
    self.config = config
    self.localSettings = config.localSettings
    self.inboundBudget = InboundBudget(connectionLimit: config.maxBufferedInboundBytes, server: serverBudget)
    self.resetLimiter = RateLimiter(config.resetRateLimit, now: now)
    self.pingLimiter = RateLimiter(config.pingRateLimit, now: now)
  }

  var isServer: Bool { self.role == .server }

  /// Streams open now.
  var openStreams: Int { self.streams.count }

  /// Whether some stream has something to send; ``writeNext(into:)`` sends it.
  var hasReadyStreams: Bool { !self.readyStreams.isEmpty }

  // MARK: - Starting

  /// The channel is up: a client sends its preface and settings (NIOSSL holds them until its handshake is done).
  mutating func start(into actions: inout [Action]) {
    guard case .client = self.role else { return }
    actions.append(.writePreface(.clientDefault))
    self.sendOwnSettings(into: &actions)
    actions.append(.flush)
  }

  /// The handshake timer fired: a peer that has not sent its preface and settings yet is dropped.
  mutating func handshakeTimedOut(into actions: inout [Action]) {
    guard self.phase != .active && self.phase != .closed else { return }
    self.connectionError(WireError(.handshakeTimeout, "no preface and SETTINGS within \(self.config.handshakeTimeout)"), into: &actions)
  }

  // MARK: - Receiving

  /// Handles one element the parser produced.
  mutating func receive(_ element: FrameParser.Element, now: NIODeadline, into actions: inout [Action]) {
    guard self.phase != .closed else { return }
    do {
      try self.handle(element, now: now, into: &actions)
    } catch {
      self.fail(error, now: now, into: &actions)
    }
  }

  /// Handles an error the parser raised (a stream error means it consumed the frame).
  mutating func fail(_ error: WireError, now: NIODeadline, into actions: inout [Action]) {
    switch error.scope {
    case .stream:
      self.streamError(error, countsAsAbuse: true, now: now, into: &actions)
    case .connection:
      self.connectionError(error, into: &actions)
    }
  }

  private mutating func handle(_ element: FrameParser.Element, now: NIODeadline, into actions: inout [Action]) throws(WireError) {
    switch element {
    case .preface(let preface):
      try self.handlePreface(preface, into: &actions)
    case .frame(let frame):
      switch self.phase {
      case .awaitingPreface:
        if case .goAway(_, let code, let debug) = frame {
          // A server refusing our preface answers with a GOAWAY instead of its own.
          self.closeReason = RPCError(code: .unavailable, message: "The server refused the connection: \(code) \(debug)")
          self.closeChannel(into: &actions)
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
        actions.append(.write(.settingsAck))
        self.phase = .active
        actions.append(.cancelHandshakeTimer)
        self.armIdleTimer(into: &actions)
        self.scheduleKeepalive(into: &actions)
        if case .client = self.role { actions.append(.handshakeCompleted) }
      case .active:
        try self.handleActive(frame, now: now, into: &actions)
      case .closed:
        return
      }
    }
  }

  private mutating func handlePreface(_ preface: Preface, into actions: inout [Action]) throws(WireError) {
    guard self.phase == .awaitingPreface else {
      throw WireError(.protocolError, "a second preface")
    }
    let supported = Preface.currentVersion
    if self.isServer {
      guard preface.minimumVersion <= supported && supported <= preface.maximumVersion else {
        actions.append(
          .log(.info, "Refusing a client's versions", ["offered": "\(preface.minimumVersion)...\(preface.maximumVersion)"])
        )
        // Exactly the debug text docs/PROTOCOL.md §3.2 shows: it names the versions the server speaks.
        throw WireError(.versionUnsupported, "server speaks versions \(supported)...\(supported)")
      }
      actions.append(.writePreface(.selected(supported)))
      self.sendOwnSettings(into: &actions)
    } else {
      guard preface.minimumVersion == supported && preface.maximumVersion == supported else {
        throw WireError(.versionUnsupported, "server selected version \(preface.minimumVersion), which this client did not offer")
      }
    }
    self.phase = .awaitingSettings
  }

  private mutating func sendOwnSettings(into actions: inout [Action]) {
    actions.append(.write(.settings(self.localSettings.pairs)))
    let raise = self.config.connectionWindowSize - PeerSettings.initialConnectionWindowSize
    if raise > 0 {
      actions.append(.write(.windowUpdate(streamID: 0, increment: UInt32(min(raise, PeerSettings.maximumWindowSize)))))
      self.receiveConnectionWindow += raise
    }
  }

  private mutating func handleActive(_ frame: Frame, now: NIODeadline, into actions: inout [Action]) throws(WireError) {
    switch frame {
    case .settings:
      throw WireError(.protocolError, "SETTINGS may be sent only once per connection")
    case .settingsAck:
      return
    case .headers(let id, let path, let metadata, let endStream):
      try self.receiveHeaders(id: id, path: path, metadata: metadata, endStream: endStream, now: now, into: &actions)
    case .message(let id, let fragment, let flags):
      try self.receiveMessage(id: id, fragment: fragment, flags: flags, into: &actions)
    case .trailers(let id, let status, let metadata):
      try self.receiveTrailers(id: id, status: status, metadata: metadata, into: &actions)
    case .resetStream(let id, let code):
      try self.receiveReset(id: id, code: code, now: now, into: &actions)
    case .ping(let data, let ack):
      if ack {
        if self.awaitingKeepaliveAck && data == self.keepaliveData {
          self.awaitingKeepaliveAck = false
          actions.append(.cancelKeepaliveTimeout)
          self.scheduleKeepalive(into: &actions)
        }
      } else {
        if self.pingLimiter.record(now: now) {
          throw WireError(.enhanceYourCalm, "more than \(self.config.pingRateLimit.maxEvents) PINGs in \(self.config.pingRateLimit.interval)")
        }
        actions.append(.write(.ping(data: data, ack: true)))
      }
    case .goAway(let last, let code, let debug):
      self.receiveGoAway(lastStreamID: last, code: code, debug: debug, into: &actions)
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

  private mutating func receiveHeaders(
    id: UInt32,
    path: String,
    metadata: Metadata,
    endStream: Bool,
    now: NIODeadline,
    into actions: inout [Action]
  ) throws(WireError) {
    guard self.isServer else {
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
      actions.append(.deliver(key: stream.key, .metadata(metadata)))
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
      try self.refuse(id, "the server is shutting down; retry on a new connection", now: now, into: &actions)
      return
    }
    guard self.streams.count < self.localSettings.maxConcurrentStreams else {
      try self.refuse(id, "more than MAX_CONCURRENT_STREAMS \(self.localSettings.maxConcurrentStreams) streams", now: now, into: &actions)
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
        actions.append(
          .write(
            .trailers(
              streamID: id,
              status: Status(code: .unimplemented, message: "Compression algorithm '\(name.prefix(64))' is not supported; this server accepts \(accepted)."),
              metadata: trailers
            )
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

    let stream = StreamRecord(
      key: UInt64(id),
      id: id,
      sendWindow: self.peerSettings.initialWindowSize,
      receiveWindow: self.localSettings.initialWindowSize
    )
    stream.receivedHeaders = true
    stream.inboundEncoding = requestEncoding
    self.add(stream, into: &actions)
    actions.append(.openStream(key: stream.key, descriptor: descriptor, responseCompression: responseCompression))
    actions.append(.deliver(key: stream.key, .metadata(metadata)))
    if endStream {
      stream.remoteClosed = true
      actions.append(.finishInbound(key: stream.key))
    } else if let timeout = self.config.requestTimeout {
      stream.awaitingRequest = true
      actions.append(.armRequestTimer(key: stream.key, timeout))
    }
  }

  private mutating func refuse(_ id: UInt32, _ reason: String, now: NIODeadline, into actions: inout [Action]) throws(WireError) {
    if self.resetLimiter.record(now: now) {
      throw WireError(.enhanceYourCalm, "too many refused streams")
    }
    actions.append(.log(.debug, "Refusing stream", ["stream": "\(id)", "reason": "\(reason)"]))
    actions.append(.write(.resetStream(streamID: id, code: .refusedStream)))
    self.rememberClosed(id)
  }

  private mutating func receiveMessage(id: UInt32, fragment: ByteBuffer, flags: FrameFlags, into actions: inout [Action]) throws(WireError) {
    let length = fragment.readableBytes
    // Connection-level flow control counts every MESSAGE, whatever becomes of it.
    guard length <= self.receiveConnectionWindow else {
      throw WireError(.flowControlError, "MESSAGE of \(length) octets exceeds the connection window \(self.receiveConnectionWindow)")
    }
    self.receiveConnectionWindow -= length
    self.creditConnection(length, into: &actions)

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
    if endMessage || endStream { self.requestArrived(stream, into: &actions) }
    if stream.discardingInbound {
      self.creditStream(stream, length, into: &actions)
    } else if stream.partialBytes + length > self.config.maxMessageSize {
      self.messageTooLarge(
        stream,
        uncredited: length + stream.partialBytes - stream.partialCredited,
        "Message exceeds the maximum message size of \(self.config.maxMessageSize) bytes; send smaller messages or raise maxMessageSize.",
        into: &actions
      )
      if !self.isServer { return }
    } else if let refusal = self.inboundBudget.reserve(length) {
      // Never buffered past the budget: this message fails its RPC and the rest of it is discarded.
      self.messageTooLarge(stream, uncredited: length + stream.partialBytes - stream.partialCredited, refusal.message, into: &actions)
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
        let limit = self.config.maxMessageSize
        let compressedMessage = message
        let inflating = Result { () throws(MessageCompression.DecompressionFailure) in
          try MessageCompression.decompress(compressedMessage, with: encoding, limit: limit)
        }
        switch inflating {
        case .success(let inflated):
          message = inflated
        case .failure(.tooLarge):
          // Stopped at the limit: a small frame that inflates to gigabytes costs at most the limit.
          self.messageTooLarge(
            stream,
            uncredited: uncredited,
            "Message decompresses to more than the maximum message size of \(self.config.maxMessageSize) bytes.",
            into: &actions
          )
          if !self.isServer { return }
          return try self.finishMessageFrame(stream, id: id, endStream: endStream, into: &actions)
        case .failure(.corrupt):
          throw WireError(.internalError, "message on stream \(id) is not valid \(MessageCompression.name(of: encoding) ?? "") data", stream: id)
        }
        // The budget counts what is held: the inflated message, not the frames it came in.
        if let refusal = self.inboundBudget.reserve(message.readableBytes - stream.reservedBytes) {
          self.messageTooLarge(stream, uncredited: uncredited, refusal.message, into: &actions)
          if !self.isServer { return }
          return try self.finishMessageFrame(stream, id: id, endStream: endStream, into: &actions)
        }
        stream.reservedBytes = max(stream.reservedBytes, message.readableBytes)
      }
      stream.partial = nil
      stream.partialBytes = 0
      stream.partialCredited = 0
      stream.unreadMessages += 1
      // The reservation moves to the reader, which releases it when the message is read or dropped.
      let bytes = stream.reservedBytes
      stream.reservedBytes = 0
      actions.append(.deliver(key: stream.key, .message(message, credit: uncredited, bytes: bytes)))
    } else if length > 0 || !endStream {
      stream.reservedBytes += length
      if stream.partial == nil {
        var buffer = ByteBufferAllocator().buffer(capacity: min(self.config.maxMessageSize, max(length * 4, 1024)))
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
        self.creditStream(stream, length, into: &actions)
      }
    }

    try self.finishMessageFrame(stream, id: id, endStream: endStream, into: &actions)
  }

  /// The stream's reader fails with `resourceExhausted`; the rest of the message is discarded.
  private mutating func messageTooLarge(_ stream: StreamRecord, uncredited: Int, _ message: String, into actions: inout [Action]) {
    stream.discardingInbound = true
    self.dropPartial(stream)
    self.creditStream(stream, uncredited, into: &actions)
    stream.partialBytes = 0
    stream.partialCredited = 0
    let error = RPCError(code: .resourceExhausted, message: message)
    if self.isServer {
      // The handler reads the error after what came before it (the metadata, if the handler has
      // not started yet) and GRPCCore answers it as the RPC's status.
      actions.append(.failInboundAfterQueued(key: stream.key, error))
    } else {
      actions.append(.failInbound(key: stream.key, error))
      self.resetStream(stream, code: .cancel, into: &actions)
    }
  }

  /// Forgets the message being assembled on `stream`, giving its octets back to the budget.
  private func dropPartial(_ stream: StreamRecord) {
    stream.partial = nil
    self.inboundBudget.release(stream.reservedBytes)
    stream.reservedBytes = 0
  }

  /// The request arrived (its first message ended, or the stream did): the request timer stops.
  private func requestArrived(_ stream: StreamRecord, into actions: inout [Action]) {
    guard stream.awaitingRequest else { return }
    stream.awaitingRequest = false
    actions.append(.cancelRequestTimer(key: stream.key))
  }

  /// The request timer of the stream `key` fired: a stream whose request did not arrive in time has its reader
  /// fail with `deadlineExceeded` (the handler answers with that status); whatever the peer still sends on it is
  /// discarded.
  mutating func requestTimedOut(key: UInt64, into actions: inout [Action]) {
    guard let stream = self.streams[key], stream.awaitingRequest else { return }
    stream.awaitingRequest = false
    guard !stream.remoteClosed, !stream.discardingInbound, let timeout = self.config.requestTimeout else { return }
    actions.append(.log(.debug, "Request did not arrive in time", ["stream": "\(stream.id)"]))
    stream.discardingInbound = true
    self.creditStream(stream, stream.partialBytes - stream.partialCredited, into: &actions)
    self.dropPartial(stream)
    stream.partialBytes = 0
    stream.partialCredited = 0
    let error = RPCError(
      code: .deadlineExceeded,
      message: "The request did not arrive within the server's request timeout of \(timeout) "
        + "(from its HEADERS to the end of its first message); send the request promptly after opening the stream."
    )
    actions.append(.failInboundAfterQueued(key: key, error))
  }

  private mutating func finishMessageFrame(_ stream: StreamRecord, id: UInt32, endStream: Bool, into actions: inout [Action]) throws(WireError) {
    if endStream {
      guard self.isServer else {
        throw WireError(.protocolError, "MESSAGE with END_STREAM from a server: a response ends with TRAILERS", stream: id)
      }
      if stream.partial != nil {
        throw WireError(.protocolError, "stream \(id) ended in the middle of a message", stream: id)
      }
      stream.remoteClosed = true
      actions.append(.finishInbound(key: stream.key))
      self.closeIfDone(stream, into: &actions)
    }
  }

  private mutating func receiveTrailers(id: UInt32, status: Status, metadata: Metadata, into actions: inout [Action]) throws(WireError) {
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
    if !stream.discardingInbound {
      actions.append(.deliver(key: stream.key, .status(status, metadata)))
      actions.append(.finishInbound(key: stream.key))
    }
    // The server is done: whatever this side still had to send is moot.
    stream.localClosed = true
    Self.failPending(stream, RPCError(code: .cancelled, message: "The server already ended the RPC."), into: &actions)
    self.removeStream(stream, into: &actions)
  }

  private mutating func receiveReset(id: UInt32, code: WireErrorCode, now: NIODeadline, into actions: inout [Action]) throws(WireError) {
    if self.resetLimiter.record(now: now) {
      throw WireError(.enhanceYourCalm, "more than \(self.config.resetRateLimit.maxEvents) stream resets in \(self.config.resetRateLimit.interval)")
    }
    guard let stream = self.streamsByID[id] else {
      if self.isIdle(id) { throw WireError(.protocolError, "RST_STREAM on idle stream \(id)") }
      return
    }
    let error = Self.rpcError(forReset: code, stream: id)
    actions.append(.failInbound(key: stream.key, error))
    Self.failPending(stream, error, into: &actions)
    stream.localClosed = true
    stream.remoteClosed = true
    self.removeStream(stream, into: &actions)
  }

  private mutating func receiveGoAway(lastStreamID: UInt32, code: WireErrorCode, debug: String, into actions: inout [Action]) {
    actions.append(.log(.debug, "GOAWAY received", ["last": "\(lastStreamID)", "code": "\(code)", "debug": "\(debug)"]))
    self.goAwayReceived = min(self.goAwayReceived ?? lastStreamID, lastStreamID)
    self.notifyDraining(into: &actions)
    if !self.isServer {
      // Streams above the last one the server accepted were never processed: safe to retry.
      let unprocessed = self.streams.values.filter { $0.id == 0 || $0.id > lastStreamID }
      for stream in unprocessed {
        let error = RPCError(
          code: .unavailable,
          message: "The server is going away (\(code)) and did not process this RPC; it is safe to retry."
        )
        actions.append(.failInbound(key: stream.key, error))
        Self.failPending(stream, error, into: &actions)
        self.removeStream(stream, into: &actions)
      }
      for key in self.waitingOpens {
        actions.append(.refuseWaitingStream(key: key, RPCError(code: .unavailable, message: "The server is going away; retry on a new connection.")))
      }
      self.waitingOpens.removeAll()
    }
    if code != .noError {
      self.closeReason = RPCError(code: .unavailable, message: "The server closed the connection: \(code) \(debug)")
    }
    self.closeWhenIdle = true
    self.closeIfIdle(into: &actions)
  }

  private mutating func receiveWindowUpdate(id: UInt32, increment: Int) throws(WireError) {
    if id == 0 {
      guard self.sendConnectionWindow + increment <= PeerSettings.maximumWindowSize else {
        throw WireError(.flowControlError, "WINDOW_UPDATE overflows the connection window past 2^31-1")
      }
      self.sendConnectionWindow += increment
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
  }

  // MARK: - Flow-control credit

  /// The reader of stream `key` read a message: its credit goes back to the peer (and, once nothing is left
  /// unread, what was held back for a message still arriving).
  mutating func messageRead(key: UInt64, credit: Int, into actions: inout [Action]) {
    guard let stream = self.streams[key] else { return }
    stream.unreadMessages -= 1
    self.creditStream(stream, credit, into: &actions)
    if stream.unreadMessages == 0 && stream.partialBytes > stream.partialCredited {
      let owed = stream.partialBytes - stream.partialCredited
      stream.partialCredited = stream.partialBytes
      self.creditStream(stream, owed, into: &actions)
    }
  }

  private func creditStream(_ stream: StreamRecord, _ amount: Int, into actions: inout [Action]) {
    guard amount > 0, !stream.remoteClosed else { return }
    stream.pendingCredit += amount
    if stream.pendingCredit >= max(1, self.localSettings.initialWindowSize / 2) {
      stream.receiveWindow += stream.pendingCredit
      actions.append(.write(.windowUpdate(streamID: stream.id, increment: UInt32(stream.pendingCredit))))
      stream.pendingCredit = 0
    }
  }

  private mutating func creditConnection(_ amount: Int, into actions: inout [Action]) {
    guard amount > 0 else { return }
    self.pendingConnectionCredit += amount
    if self.pendingConnectionCredit >= self.config.connectionWindowSize / 2 {
      self.receiveConnectionWindow += self.pendingConnectionCredit
      actions.append(.write(.windowUpdate(streamID: 0, increment: UInt32(self.pendingConnectionCredit))))
      self.pendingConnectionCredit = 0
    }
  }

  // MARK: - Errors

  /// Answers a stream error with `RST_STREAM` and ends the stream; the connection goes on.
  private mutating func streamError(_ error: WireError, countsAsAbuse: Bool, now: NIODeadline, into actions: inout [Action]) {
    guard case .stream(let id) = error.scope else { return self.connectionError(error, into: &actions) }
    if countsAsAbuse && self.resetLimiter.record(now: now) {
      return self.connectionError(WireError(.enhanceYourCalm, "too many stream errors"), into: &actions)
    }
    actions.append(.log(.debug, "Stream error", ["stream": "\(id)", "error": "\(error)"]))
    if let stream = self.streamsByID[id] {
      let rpcError = RPCError(code: .internalError, message: "The peer broke the protocol: \(error.message)")
      actions.append(.failInbound(key: stream.key, rpcError))
      Self.failPending(stream, rpcError, into: &actions)
      self.resetStream(stream, code: error.code, into: &actions)
    } else {
      if self.isServer && id > self.lastPeerStreamID {
        // A rejected HEADERS still uses up its stream id, so it cannot be reused.
        guard id % 2 == 1 else {
          return self.connectionError(WireError(.protocolError, "stream id \(id) is even: clients open odd-numbered streams"), into: &actions)
        }
        self.lastPeerStreamID = id
      }
      actions.append(.write(.resetStream(streamID: id, code: error.code)))
      self.rememberClosed(id)
    }
  }

  /// Answers a connection error with `GOAWAY` and closes.
  mutating func connectionError(_ error: WireError, into actions: inout [Action]) {
    guard self.phase != .closed else { return }
    actions.append(.log(.info, "Closing connection on a protocol error", ["error": "\(error)"]))
    let last = self.isServer ? self.lastPeerStreamID : 0
    if self.closeReason == nil {
      self.closeReason = RPCError(code: .unavailable, message: "Connection closed: \(error)")
    }
    actions.append(.write(.goAway(lastStreamID: last, code: error.code, debug: error.message)))
    self.goAwaySent = true
    actions.append(.flush)
    self.closeChannel(into: &actions)
  }

  /// Records why the connection ends (the channel failed), unless a reason is already known.
  mutating func noteCloseReason(_ reason: RPCError) {
    if self.closeReason == nil { self.closeReason = reason }
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

  // MARK: - Streams from the async side

  /// Clients: opens a stream, or queues it while the server's concurrency limit is reached.
  mutating func openStream(into actions: inout [Action]) -> OpenResult {
    guard self.phase == .active, self.goAwayReceived == nil, !self.goAwaySent, !self.closeWhenIdle else {
      return .refused(RPCError(code: .unavailable, message: "The connection is draining; retry on a new connection."))
    }
    let key = self.nextKey
    self.nextKey += 1
    if self.streams.count < self.peerSettings.maxConcurrentStreams {
      self.add(self.makeClientStream(key: key), into: &actions)
      return .opened(key: key)
    } else {
      self.waitingOpens.append(key)
      return .waiting(key: key)
    }
  }

  private func makeClientStream(key: UInt64) -> StreamRecord {
    StreamRecord(key: key, id: 0, sendWindow: self.peerSettings.initialWindowSize, receiveWindow: self.localSettings.initialWindowSize)
  }

  private mutating func add(_ stream: StreamRecord, into actions: inout [Action]) {
    self.streams[stream.key] = stream
    if stream.id != 0 { self.streamsByID[stream.id] = stream }
    if self.idleTimerArmed {
      self.idleTimerArmed = false
      actions.append(.cancelIdleTimer)
    }
  }

  /// Queues a part to send on stream `key`; ``writeNext(into:)`` sends it.
  mutating func enqueue(key: UInt64, item: OutboundItem, promise: EventLoopPromise<Void>?, into actions: inout [Action]) {
    guard let stream = self.streams[key], !stream.localClosed else {
      // The stream ended (the peer reset or answered it): the write has nowhere to go.
      if let promise { actions.append(.failWrite(promise, RPCError(code: .cancelled, message: "The stream is closed."))) }
      return
    }
    switch item {
    case .headers:
      if !self.isServer && stream.id == 0 {
        guard self.nextLocalStreamID <= FrameHeader.maxStreamID else {
          if let promise {
            actions.append(.failWrite(promise, RPCError(code: .unavailable, message: "Stream ids on this connection are used up; retry on a new connection.")))
          }
          self.closeWhenIdle = true
          self.notifyDraining(into: &actions)
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
  }

  /// Ends stream `key` from the async side: the client's RPC finished or was cancelled, or the server handler
  /// returned without a status.
  mutating func closeStream(key: UInt64, into actions: inout [Action]) {
    guard let stream = self.streams[key] else { return }
    if stream.localClosed && stream.remoteClosed { return }
    if self.isServer && stream.localClosed {
      // Trailers are queued or sent; the stream ends when they leave.
      return
    }
    let error = RPCError(code: .cancelled, message: "The RPC was cancelled.")
    actions.append(.failInbound(key: key, error))
    Self.failPending(stream, error, into: &actions)
    if stream.id != 0 {
      self.resetStream(stream, code: self.isServer ? .internalError : .cancel, into: &actions)
    } else {
      self.removeStream(stream, into: &actions)
    }
  }

  private mutating func resetStream(_ stream: StreamRecord, code: WireErrorCode, into actions: inout [Action]) {
    if stream.id != 0 {
      actions.append(.write(.resetStream(streamID: stream.id, code: code)))
      self.rememberClosed(stream.id)
    }
    stream.localClosed = true
    stream.remoteClosed = true
    self.removeStream(stream, into: &actions)
  }

  private mutating func rememberClosed(_ id: UInt32) {
    if self.recentlyClosed.count == 64 { self.recentlyClosed.removeFirst() }
    self.recentlyClosed.append(id)
  }

  private mutating func closeIfDone(_ stream: StreamRecord, into actions: inout [Action]) {
    if stream.localClosed && stream.remoteClosed && stream.pending.isEmpty {
      self.removeStream(stream, into: &actions)
    }
  }

  private mutating func removeStream(_ stream: StreamRecord, into actions: inout [Action]) {
    guard self.streams.removeValue(forKey: stream.key) != nil else { return }
    if stream.id != 0 { self.streamsByID.removeValue(forKey: stream.id) }
    stream.awaitingRequest = false
    self.dropPartial(stream)
    // Writers still waiting on this stream learn it is gone rather than wait forever.
    Self.failPending(stream, RPCError(code: .cancelled, message: "The stream is closed."), into: &actions)
    actions.append(.streamClosed(key: stream.key))
    // A draining connection admits no waiting stream: receiveGoAway fails them instead.
    while self.goAwayReceived == nil, !self.closeWhenIdle,
      self.streams.count < self.peerSettings.maxConcurrentStreams,
      let key = self.waitingOpens.popFirst()
    {
      self.add(self.makeClientStream(key: key), into: &actions)
      actions.append(.admitWaitingStream(key: key))
    }
    if self.streams.isEmpty {
      self.closeIfIdle(into: &actions)
      self.armIdleTimer(into: &actions)
    }
  }

  private static func failPending(_ stream: StreamRecord, _ error: RPCError, into actions: inout [Action]) {
    while let (_, promise) = stream.pending.popFirst() {
      if let promise { actions.append(.failWrite(promise, error)) }
    }
    stream.headSent = 0
  }

  // MARK: - Writing

  private mutating func markReady(_ stream: StreamRecord) {
    guard !stream.isReady else { return }
    stream.isReady = true
    self.readyStreams.append(stream)
  }

  /// Writes the next ready stream's turn: what it has queued up to one message fragment, as windows allow.
  /// Streams take turns round-robin. Returns `false` when nothing more can be written now (no stream is ready,
  /// the connection window is closed, or the handshake is not done).
  mutating func writeNext(into actions: inout [Action]) -> Bool {
    guard self.phase == .active || self.phase == .awaitingSettings else { return false }
    guard let stream = self.readyStreams.popFirst() else { return false }
    stream.isReady = false
    guard self.streams[stream.key] != nil else { return true }
    switch self.writeSome(stream, into: &actions) {
    case .more:
      self.markReady(stream)
    case .blockedOnConnection:
      // Put it back first in line and stop: nothing can move until the window opens.
      stream.isReady = true
      self.readyStreams.prepend(stream)
      return false
    case .blockedOnStream, .empty:
      break
    }
    return true
  }

  private enum WriteOutcome {
    case more
    case empty
    case blockedOnStream
    case blockedOnConnection
  }

  private mutating func writeSome(_ stream: StreamRecord, into actions: inout [Action]) -> WriteOutcome {
    while let head = stream.pending.first {
      switch head.item {
      case .headers(let path, let metadata):
        if let problem = MetadataCodec.problem(in: metadata) {
          self.failUnsendableHeaders(stream, problem, code: .invalidArgument, into: &actions)
          return .empty
        }
        if let problem = self.headersProblem(path: path, metadata: metadata) {
          self.failUnsendableHeaders(stream, problem, code: .resourceExhausted, into: &actions)
          return .empty
        }
        stream.sentHeaders = true
        actions.append(.write(.headers(streamID: stream.id, path: path, metadata: metadata, endStream: false)))
        stream.pending.removeFirst()
        if let promise = head.promise { actions.append(.succeedWrite(promise)) }
      case .trailers(var status, var metadata):
        if let problem = self.trailersProblem(status: status, metadata: metadata) {
          // The status still goes out, without what the client could not take (docs/PROTOCOL.md §9.2): code
          // INTERNAL, no metadata, the message cut to the client's limits. A client whose limits cannot take
          // even an empty message gets RST_STREAM(METADATA_TOO_LARGE) instead.
          metadata = [:]
          guard let fitting = self.replacementStatus("The server could not send the RPC's status: \(problem)") else {
            stream.pending.removeFirst()
            if let promise = head.promise { actions.append(.succeedWrite(promise)) }
            actions.append(.finishInbound(key: stream.key))
            self.resetStream(stream, code: .metadataTooLarge, into: &actions)
            return .empty
          }
          status = fitting
        }
        actions.append(.write(.trailers(streamID: stream.id, status: status, metadata: metadata)))
        stream.pending.removeFirst()
        if let promise = head.promise { actions.append(.succeedWrite(promise)) }
        // A server is done with the stream once its trailers leave.
        stream.remoteClosed = true
        actions.append(.finishInbound(key: stream.key))
        self.rememberClosed(stream.id)
        self.removeStream(stream, into: &actions)
        return .empty
      case .endStream:
        actions.append(.writeEndStream(streamID: stream.id))
        stream.pending.removeFirst()
        if let promise = head.promise { actions.append(.succeedWrite(promise)) }
        self.closeIfDone(stream, into: &actions)
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
        actions.append(.writeMessage(streamID: stream.id, fragment: fragment, flags: flags))
        stream.sendWindow -= allowance
        self.sendConnectionWindow -= allowance
        if isLast {
          stream.headSent = 0
          stream.pending.removeFirst()
          if let promise = head.promise { actions.append(.succeedWrite(promise)) }
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
  private mutating func failUnsendableHeaders(_ stream: StreamRecord, _ problem: String, code: RPCError.Code, into actions: inout [Action]) {
    let error: RPCError
    if self.isServer {
      let text = "The server could not send its response metadata: \(problem)"
      if let status = self.replacementStatus(text) {
        actions.append(.write(.trailers(streamID: stream.id, status: status, metadata: [:])))
      } else {
        actions.append(.write(.resetStream(streamID: stream.id, code: .metadataTooLarge)))
      }
      self.rememberClosed(stream.id)
      error = RPCError(code: .internalError, message: text)
    } else {
      error = RPCError(code: code, message: "The request cannot be sent: \(problem).")
    }
    stream.localClosed = true
    stream.remoteClosed = true
    actions.append(.failInbound(key: stream.key, error))
    Self.failPending(stream, error, into: &actions)
    self.removeStream(stream, into: &actions)
  }

  // MARK: - Timers and lifecycle

  private func scheduleKeepalive(into actions: inout [Action]) {
    guard let keepalive = self.config.keepalive, self.phase == .active else { return }
    actions.append(.armKeepaliveTimer(keepalive.interval))
  }

  /// The keepalive timer fired: ping the peer, which must answer within the keepalive timeout.
  mutating func keepaliveDue(into actions: inout [Action]) {
    guard let keepalive = self.config.keepalive, self.phase == .active else { return }
    self.keepaliveData &+= 1
    self.awaitingKeepaliveAck = true
    actions.append(.write(.ping(data: self.keepaliveData, ack: false)))
    actions.append(.flush)
    actions.append(.armKeepaliveTimeout(keepalive.timeout))
  }

  /// The keepalive ping went unanswered for the keepalive timeout: the connection is dead.
  mutating func keepaliveTimedOut(into actions: inout [Action]) {
    guard self.awaitingKeepaliveAck, let keepalive = self.config.keepalive else { return }
    actions.append(.log(.info, "Keepalive ping unanswered; closing", [:]))
    self.closeReason = RPCError(code: .unavailable, message: "The peer did not answer a keepalive ping within \(keepalive.timeout).")
    self.closeChannel(into: &actions)
  }

  private mutating func armIdleTimer(into actions: inout [Action]) {
    guard self.phase == .active, let timeout = self.config.idleTimeout, self.streams.isEmpty, !self.idleTimerArmed else { return }
    self.idleTimerArmed = true
    actions.append(.armIdleTimer(timeout))
  }

  /// The idle timer fired: a connection still without streams says GOAWAY and closes.
  mutating func idleTimedOut(into actions: inout [Action]) {
    guard self.idleTimerArmed else { return }
    self.idleTimerArmed = false
    guard self.streams.isEmpty, self.phase != .closed, let timeout = self.config.idleTimeout else { return }
    actions.append(.log(.debug, "Closing idle connection", [:]))
    self.sendGoAway(code: .noError, debug: "idle for \(timeout)", into: &actions)
    self.closeReason = RPCError(code: .unavailable, message: "The connection was closed after being idle.")
    actions.append(.flush)
    self.closeChannel(into: &actions)
  }

  private mutating func sendGoAway(code: WireErrorCode, debug: String, into actions: inout [Action]) {
    guard !self.goAwaySent else { return }
    self.goAwaySent = true
    actions.append(.write(.goAway(lastStreamID: self.isServer ? self.lastPeerStreamID : 0, code: code, debug: debug)))
    self.notifyDraining(into: &actions)
  }

  /// Graceful shutdown: no new streams; in-flight ones finish; then the connection closes.
  mutating func beginGracefulShutdown(into actions: inout [Action]) {
    guard self.phase != .closed else { return }
    if self.phase != .active {
      self.closeChannel(into: &actions)
      return
    }
    if self.isServer {
      self.sendGoAway(code: .noError, debug: "server shutting down", into: &actions)
    } else {
      // A client says GOAWAY(0) once its last call is done (closeIfIdle), PROTOCOL.md §13.
      self.notifyDraining(into: &actions)
    }
    self.closeWhenIdle = true
    actions.append(.flush)
    self.closeIfIdle(into: &actions)
  }

  private mutating func closeIfIdle(into actions: inout [Action]) {
    guard self.closeWhenIdle, self.streams.isEmpty else { return }
    if !self.isServer { self.sendGoAway(code: .noError, debug: "client done", into: &actions) }
    actions.append(.flush)
    self.closeChannel(into: &actions)
  }

  private mutating func notifyDraining(into actions: inout [Action]) {
    guard !self.drainingNotified else { return }
    self.drainingNotified = true
    actions.append(.draining)
  }

  private mutating func closeChannel(into actions: inout [Action]) {
    guard self.phase != .closed else { return }
    self.phase = .closed
    actions.append(.close)
  }

  /// The channel closed: every stream and every stream waiting to open fails with `unavailable` and `reason`.
  mutating func tearDown(reason: RPCError, into actions: inout [Action]) {
    self.phase = .closed
    self.idleTimerArmed = false
    self.awaitingKeepaliveAck = false
    self.notifyDraining(into: &actions)
    let error = RPCError(code: .unavailable, message: reason.message, cause: reason.cause)
    for stream in self.streams.values {
      actions.append(.failInbound(key: stream.key, error))
      Self.failPending(stream, error, into: &actions)
      stream.awaitingRequest = false
      self.dropPartial(stream)
      actions.append(.streamClosed(key: stream.key))
    }
    self.streams.removeAll()
    self.streamsByID.removeAll()
    self.readyStreams.removeAll()
    for key in self.waitingOpens { actions.append(.refuseWaitingStream(key: key, error)) }
    self.waitingOpens.removeAll()
  }
}
