import GRPCCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Runs one Redress wire connection on its channel: feeds what arrives to its ``ConnectionStateMachine`` and
/// performs the actions it returns — writes (coalesced into one flush per loop tick), deliveries to the
/// streams' readers, timers, closing.
///
/// Both transports use it; `role` decides who opens streams. Everything here runs on the channel's event loop;
/// async code reaches it through ``StreamHandle`` and ``ConnectionHandle``. The protocol itself — what to send,
/// when a stream ends, every limit and budget — is the state machine's; this type only does I/O.
final class ConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer
  typealias Action = ConnectionStateMachine.Action

  enum Role {
    /// Accepts streams and hands each to `onStream`.
    case server(onStream: @Sendable (ServerStreamStart) -> Void)
    /// Opens streams; `ready` completes once the server's preface and settings arrived.
    case client(ready: EventLoopPromise<Void>)
  }

  /// What the async side holds of one stream: its reader and its request timer.
  private struct StreamIO {
    enum Inbound {
      case server(InboundQueue<RPCRequestPart<WireBytes>>, CancellationSlot)
      case client(InboundQueue<RPCResponsePart<WireBytes>>)
    }

    let inbound: Inbound
    var requestTimer: Scheduled<Void>?
  }

  let role: Role
  let config: ConnectionConfig
  let logger: Logger
  /// Called once when the connection starts draining: a `GOAWAY` was received or sent.
  var onDraining: (@Sendable () -> Void)?

  private var machine: ConnectionStateMachine
  private var context: ChannelHandlerContext!
  private var parser: FrameParser
  private(set) var peerIdentity: PeerIdentity?
  private(set) var remoteAddress = "unknown"
  private(set) var localAddress = "unknown"
  /// Why the connection ended, if it ended badly; surfaced to the client's RPCs.
  var closeReason: RPCError? { self.machine.closeReason }
  /// Octets received and not yet read on this connection, drawing on the server's budget too.
  var inboundBudget: InboundBudget { self.machine.inboundBudget }

  private var ioStreams: [UInt64: StreamIO] = [:]
  private var waitingOpens: [UInt64: (Result<UInt64, any Error>) -> Void] = [:]
  /// Reused between events so that performing actions does not allocate an array each time.
  private var spareActions: [Action] = []

  private var outBuffer: ByteBuffer
  private var inReadLoop = false
  private var flushPending = false
  private var flushScheduled = false
  private var started = false

  private var handshakeTimer: Scheduled<Void>?
  private var idleTimer: Scheduled<Void>?
  private var keepaliveTimer: Scheduled<Void>?
  private var keepaliveTimeout: Scheduled<Void>?

  /// Told about streams, bytes, `GOAWAY` and `RESET_STREAM` (server connections with metrics only).
  private let observer: (any WireObserver)?
  /// Octets read and written since they were last reported to ``observer``.
  private var unreportedRead = 0
  private var unreportedWritten = 0

  init(
    role: Role, config: ConnectionConfig, logger: Logger, serverBudget: InboundBudget? = nil,
    observer: (any WireObserver)? = nil
  ) {
    self.observer = observer
    self.role = role
    self.config = config
    self.logger = logger
    let machineRole: ConnectionStateMachine.Role
    switch role {
    case .server: machineRole = .server
    case .client: machineRole = .client
    }
    self.machine = ConnectionStateMachine(role: machineRole, config: config, serverBudget: serverBudget, now: .now())
    let localSettings = config.localSettings
    self.parser = FrameParser(
      expectingPreface: true,
      maxFrameSize: localSettings.maxFrameSize,
      maxMetadataSize: localSettings.maxMetadataSize
    )
    self.outBuffer = ByteBuffer()
  }

  // MARK: - Driving the state machine

  /// Runs one event through the state machine and performs what it says, then writes what became writable.
  private func run(_ event: (inout ConnectionStateMachine, inout [Action]) -> Void) {
    var actions = self.takeActions()
    event(&self.machine, &actions)
    self.perform(&actions)
    self.spareActions = actions
    self.drain()
  }

  private func takeActions() -> [Action] {
    var actions: [Action] = []
    swap(&actions, &self.spareActions)
    return actions
  }

  private func perform(_ actions: inout [Action]) {
    for action in actions {
      self.perform(action)
    }
    actions.removeAll(keepingCapacity: true)
  }

  private func perform(_ action: Action) {
    switch action {
    case .writePreface(let preface):
      self.prepareOutBuffer()
      preface.encode(into: &self.outBuffer)
      self.markFlush()
    case .write(let frame):
      self.prepareOutBuffer()
      FrameEncoder.encode(frame, into: &self.outBuffer)
      self.markFlush()
      if let observer = self.observer { Self.report(frame, sent: true, to: observer) }
    case .writeMessage(let id, let fragment, let flags):
      self.writeMessageFragment(id, fragment, flags: flags)
    case .writeEndStream(let id):
      self.prepareOutBuffer()
      FrameEncoder.writeHeader(length: 0, type: .message, flags: .endStream, streamID: id, into: &self.outBuffer)
      self.markFlush()
    case .flush:
      self.flushNow()
    case .openStream(let key, let descriptor, let responseCompression):
      self.observer?.streamOpened()
      self.openServerStream(key: key, descriptor: descriptor, responseCompression: responseCompression)
    case .deliver(let key, let part):
      self.deliver(part, to: key)
    case .finishInbound(let key):
      switch self.ioStreams[key]?.inbound {
      case .server(let queue, _): queue.finish()
      case .client(let queue): queue.finish()
      case nil: break
      }
    case .failInbound(let key, let error):
      switch self.ioStreams[key]?.inbound {
      case .server(let queue, let slot):
        // Cancel first: a handler woken by the failed read must already see its RPC cancelled.
        slot.cancel()
        queue.fail(error)
      case .client(let queue):
        queue.fail(error)
      case nil:
        break
      }
    case .failInboundAfterQueued(let key, let error):
      if case .server(let queue, _) = self.ioStreams[key]?.inbound {
        queue.fail(afterQueued: error)
      }
    case .succeedWrite(let promise):
      promise.succeed()
    case .failWrite(let promise, let error):
      promise.fail(error)
    case .streamClosed(let key):
      self.ioStreams.removeValue(forKey: key)?.requestTimer?.cancel()
    case .admitWaitingStream(let key):
      self.ioStreams[key] = StreamIO(inbound: .client(self.makeClientQueue(key: key)))
      self.waitingOpens.removeValue(forKey: key)?(.success(key))
    case .refuseWaitingStream(let key, let error):
      self.waitingOpens.removeValue(forKey: key)?(.failure(error))
    case .armRequestTimer(let key, let timeout):
      self.ioStreams[key]?.requestTimer = self.schedule(in: timeout) { machine, actions in
        machine.requestTimedOut(key: key, into: &actions)
      }
    case .cancelRequestTimer(let key):
      self.ioStreams[key]?.requestTimer?.cancel()
      self.ioStreams[key]?.requestTimer = nil
    case .armIdleTimer(let timeout):
      self.idleTimer?.cancel()
      self.idleTimer = self.schedule(in: timeout) { machine, actions in machine.idleTimedOut(into: &actions) }
    case .cancelIdleTimer:
      self.idleTimer?.cancel()
      self.idleTimer = nil
    case .cancelHandshakeTimer:
      self.handshakeTimer?.cancel()
      self.handshakeTimer = nil
    case .armKeepaliveTimer(let interval):
      self.keepaliveTimer?.cancel()
      self.keepaliveTimer = self.schedule(in: interval) { machine, actions in machine.keepaliveDue(into: &actions) }
    case .armKeepaliveTimeout(let timeout):
      self.keepaliveTimeout?.cancel()
      self.keepaliveTimeout = self.schedule(in: timeout) { machine, actions in machine.keepaliveTimedOut(into: &actions) }
    case .cancelKeepaliveTimeout:
      self.keepaliveTimeout?.cancel()
      self.keepaliveTimeout = nil
    case .handshakeCompleted:
      if case .client(let ready) = self.role { ready.succeed() }
    case .draining:
      self.onDraining?()
    case .close:
      if case .client(let ready) = self.role {
        ready.fail(self.machine.closeReason ?? RPCError(code: .unavailable, message: "The connection to \(self.remoteAddress) closed."))
      }
      self.context?.close(promise: nil)
    case .log(let level, let message, var metadata):
      metadata["peer"] = "\(self.remoteAddress)"
      self.logger.log(level: level, message, metadata: metadata)
    }
  }

  /// Schedules `event` for the state machine after `delay`, on this loop.
  private func schedule(
    in delay: Duration,
    _ event: @escaping (inout ConnectionStateMachine, inout [Action]) -> Void
  ) -> Scheduled<Void>? {
    guard let context = self.context else { return nil }
    return context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { [self] in
      self.run(event)
      self.flushIfNeeded()
    }
  }

  /// Writes what the machine has ready, round-robin across streams, while the channel takes it.
  private func drain() {
    guard self.machine.hasReadyStreams else { return }
    var actions = self.takeActions()
    while self.machine.writeNext(into: &actions) {
      self.perform(&actions)
      guard let context = self.context, context.channel.isWritable else { break }
    }
    self.perform(&actions)
    self.spareActions = actions
  }

  // MARK: - Streams

  private func openServerStream(key: UInt64, descriptor: MethodDescriptor, responseCompression: CompressionAlgorithm?) {
    guard case .server(let onStream) = self.role else { return }
    let queue = InboundQueue<RPCRequestPart<WireBytes>>(onConsume: self.makeCreditCallback(key: key), budget: self.machine.inboundBudget)
    let slot = CancellationSlot()
    self.ioStreams[key] = StreamIO(inbound: .server(queue, slot))
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

  private func makeClientQueue(key: UInt64) -> InboundQueue<RPCResponsePart<WireBytes>> {
    InboundQueue<RPCResponsePart<WireBytes>>(onConsume: self.makeCreditCallback(key: key), budget: self.machine.inboundBudget)
  }

  private func deliver(_ part: ConnectionStateMachine.InboundPart, to key: UInt64) {
    guard let io = self.ioStreams[key] else {
      // No reader (cannot happen: readers go only with their streams); the octets go back to the budget.
      if case .message(_, _, let bytes) = part { self.machine.inboundBudget.release(bytes) }
      return
    }
    switch (io.inbound, part) {
    case (.server(let queue, _), .metadata(let metadata)):
      queue.yield(.metadata(metadata), credit: nil)
    case (.server(let queue, _), .message(let message, let credit, let bytes)):
      queue.yield(.message(WireBytes(message)), credit: credit, bytes: bytes)
    case (.client(let queue), .metadata(let metadata)):
      queue.yield(.metadata(metadata), credit: nil)
    case (.client(let queue), .message(let message, let credit, let bytes)):
      queue.yield(.message(WireBytes(message)), credit: credit, bytes: bytes)
    case (.client(let queue), .status(let status, let metadata)):
      queue.yield(.status(status, metadata), credit: nil)
    case (.server, .status):
      break  // The machine delivers statuses to clients only.
    }
  }

  private func makeCreditCallback(key: UInt64) -> @Sendable (Int) -> Void {
    let connection = self.makeHandle()
    return { credit in
      connection.execute { handler in
        handler.run { machine, actions in machine.messageRead(key: key, credit: credit, into: &actions) }
        handler.flushIfNeeded()
      }
    }
  }

  /// Opens a client stream, waiting while the server's concurrency limit is reached; completes with its
  /// reader and key.
  func openStream(completion: @escaping (Result<(InboundQueue<RPCResponsePart<WireBytes>>, UInt64), any Error>) -> Void) {
    var actions = self.takeActions()
    let result = self.machine.openStream(into: &actions)
    self.perform(&actions)
    self.spareActions = actions
    switch result {
    case .opened(let key):
      let queue = self.makeClientQueue(key: key)
      self.ioStreams[key] = StreamIO(inbound: .client(queue))
      completion(.success((queue, key)))
    case .waiting(let key):
      self.waitingOpens[key] = { [self] result in
        switch result {
        case .success(let key):
          guard case .client(let queue) = self.ioStreams[key]?.inbound else { return }
          completion(.success((queue, key)))
        case .failure(let error):
          completion(.failure(error))
        }
      }
    case .refused(let error):
      completion(.failure(error))
    }
  }

  /// Queues a part to send on a stream.
  func enqueue(key: UInt64, item: OutboundItem, promise: EventLoopPromise<Void>?) {
    self.run { machine, actions in machine.enqueue(key: key, item: item, promise: promise, into: &actions) }
  }

  /// Ends a stream from the async side: the client's RPC finished or was cancelled, or the
  /// server handler returned without a status.
  func closeStream(key: UInt64) {
    self.run { machine, actions in machine.closeStream(key: key, into: &actions) }
    self.flushIfNeeded()
  }

  /// Answers `error` with `GOAWAY` and closes.
  func connectionError(_ error: WireError) {
    self.run { machine, actions in machine.connectionError(error, into: &actions) }
  }

  /// Graceful shutdown: no new streams; in-flight ones finish; then the connection closes.
  func beginGracefulShutdown() {
    self.run { machine, actions in machine.beginGracefulShutdown(into: &actions) }
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
    if self.machine.phase != .closed || !self.ioStreams.isEmpty || !self.waitingOpens.isEmpty {
      self.tearDown()
    }
    self.context = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    self.start(context: context)
    context.fireChannelActive()
  }

  private func start(context: ChannelHandlerContext) {
    guard !self.started else { return }
    self.started = true
    self.remoteAddress = Self.describe(context.channel.remoteAddress)
    self.localAddress = Self.describe(context.channel.localAddress)
    self.machine.remoteAddress = self.remoteAddress
    self.handshakeTimer = self.schedule(in: self.config.handshakeTimeout) { machine, actions in
      machine.handshakeTimedOut(into: &actions)
    }
    self.run { machine, actions in machine.start(into: &actions) }
  }

  func channelInactive(context: ChannelHandlerContext) {
    let phase = self.machine.phase
    if (phase == .awaitingPreface || phase == .awaitingSettings) && self.machine.closeReason == nil {
      // Nothing else reports it: e.g. a client that rejected our certificate after the TLS
      // handshake (a host name mismatch) just closes.
      self.logger.info(
        "Connection closed by the peer before the handshake completed",
        metadata: ["peer": "\(self.remoteAddress)", "phase": "\(phase)"]
      )
    }
    self.reportBytes()
    self.tearDown()
    context.fireChannelInactive()
  }

  /// The channel closed: every stream fails, every timer stops.
  private func tearDown() {
    let reason = self.machine.closeReason ?? RPCError(code: .unavailable, message: "The connection to \(self.remoteAddress) closed.")
    var actions = self.takeActions()
    self.machine.tearDown(reason: reason, into: &actions)
    self.perform(&actions)
    self.spareActions = actions
    for timer in [self.handshakeTimer, self.idleTimer, self.keepaliveTimer, self.keepaliveTimeout] {
      timer?.cancel()
    }
    for io in self.ioStreams.values { io.requestTimer?.cancel() }
    self.ioStreams.removeAll()
    if case .client(let ready) = self.role {
      ready.fail(RPCError(code: .unavailable, message: reason.message, cause: reason.cause))
    }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
      guard negotiated == WireTLS.alpnIdentifier else {
        let error = WireError(.protocolError, "TLS ALPN selected '\(negotiated ?? "no protocol")'; Redress peers must select '\(WireTLS.alpnIdentifier)'")
        self.connectionError(error)
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
    self.machine.noteCloseReason(
      RPCError(code: .unavailable, message: "The connection to \(self.remoteAddress) failed: \(description)", cause: error)
    )
    if case .client(let ready) = self.role, let reason = self.machine.closeReason {
      ready.fail(reason)
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
    guard self.machine.phase != .closed else { return }
    self.inReadLoop = true
    let bytes = self.unwrapInboundIn(data)
    if self.observer != nil { self.unreportedRead += bytes.readableBytes }
    self.parser.append(bytes)
    defer {
      // Answers go out at the end of the read burst (channelReadComplete) or, if no such event
      // follows this read, on the next loop turn: never left waiting for more input.
      self.inReadLoop = false
      self.scheduleFlush()
    }
    let now = NIODeadline.now()
    while self.machine.phase != .closed {
      let element: FrameParser.Element?
      do {
        element = try self.parser.next()
      } catch {
        // A stream error means the parser consumed the frame: answer the stream and go on.
        self.run { machine, actions in machine.fail(error, now: now, into: &actions) }
        if case .stream = error.scope { continue }
        return
      }
      guard let element else { return }
      if let observer = self.observer, case .frame(let frame) = element { Self.report(frame, sent: false, to: observer) }
      self.run { machine, actions in machine.receive(element, now: now, into: &actions) }
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.flushIfNeeded()
    self.reportBytes()
    context.fireChannelReadComplete()
  }

  private static func report(_ frame: Frame, sent: Bool, to observer: any WireObserver) {
    switch frame {
    case .goAway(_, let code, _): observer.goAway(sent: sent, code: code)
    case .resetStream(_, let code): observer.reset(sent: sent, code: code)
    default: break
    }
  }

  private func reportBytes() {
    guard let observer = self.observer, self.unreportedRead > 0 || self.unreportedWritten > 0 else { return }
    observer.bytes(read: self.unreportedRead, written: self.unreportedWritten)
    self.unreportedRead = 0
    self.unreportedWritten = 0
  }

  // MARK: - Writing

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
      if self.observer != nil { self.unreportedWritten += fragment.readableBytes }
      self.context?.write(self.wrapOutboundOut(fragment), promise: nil)
    }
    self.markFlush()
  }

  private func emitOutBuffer() {
    guard self.outBuffer.readableBytes > 0 else { return }
    guard let context = self.context else {
      // Removed from its pipeline: nowhere to write.
      self.outBuffer.moveReaderIndex(to: self.outBuffer.writerIndex)
      return
    }
    if self.observer != nil { self.unreportedWritten += self.outBuffer.readableBytes }
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
    guard !self.flushScheduled, self.flushPending, let context = self.context else { return }
    self.flushScheduled = true
    context.eventLoop.assumeIsolated().execute {
      self.flushScheduled = false
      self.flushIfNeeded()
    }
  }

  private func flushNow() {
    guard let context = self.context else { return }
    self.flushPending = false
    self.emitOutBuffer()
    context.flush()
    self.reportBytes()
    if self.machine.openStreams == 0 && self.outBuffer.readableBytes == 0 {
      // An idle connection keeps no out buffer (memory per idle connection); the next write allocates
      // one. (Checked again after the flush: a handler it reached may have written more.)
      self.outBuffer = ByteBuffer()
    }
  }

  // MARK: - Handles

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

