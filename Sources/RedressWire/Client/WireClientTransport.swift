public import GRPCCore
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// A grpc-swift-2 client transport speaking the Redress wire over TLS to one `host:port`.
///
/// Connects lazily on the first RPC, queues RPCs while connecting, reconnects with exponential
/// backoff after a failure, and moves new RPCs to a fresh connection when the server sends
/// `GOAWAY`.
///
/// ```swift
/// let transport = try WireClientTransport(
///   host: "intake.internal", port: 7443,
///   config: .defaults(security: .tls(ClientTLS(trustRoots: [ca])))
/// )
/// try await withGRPCClient(transport: transport) { client in ... }
/// ```
public final class WireClientTransport: ClientTransport, Sendable {
  public typealias Bytes = WireBytes

  /// Client transport configuration.
  public struct Config: Sendable {
    /// TLS (the default) or, for tests only, plaintext.
    public var security: ClientSecurity
    /// Connection limits and timers.
    public var connection: ConnectionConfig
    /// How long one TCP connect may take.
    public var connectTimeout: Duration
    /// Delays between failed connection attempts.
    public var backoff: Backoff
    /// Per-method configuration (timeouts, retry and hedging policies).
    public var serviceConfig: ServiceConfig

    /// The defaults: ``ConnectionConfig/defaults`` with a 30-minute idle timeout, 64 MiB of buffered
    /// responses (one connection carries all of a process's calls), a 20 s connect timeout,
    /// ``Backoff/defaults``, and an empty service config.
    public static func defaults(security: ClientSecurity) -> Self {
      var connection = ConnectionConfig.defaults
      connection.idleTimeout = .seconds(30 * 60)
      connection.maxBufferedInboundBytes = 64 * 1024 * 1024
      return Self(
        security: security,
        connection: connection,
        connectTimeout: .seconds(20),
        backoff: .defaults,
        serviceConfig: ServiceConfig()
      )
    }
  }

  /// Exponential backoff between connection attempts.
  public struct Backoff: Sendable, Hashable {
    /// The first delay.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration
    /// Each delay is the previous one times this.
    public var multiplier: Double
    /// Each delay is moved at random by up to this fraction, so clients do not retry in step.
    public var jitter: Double

    /// A backoff policy.
    public init(initial: Duration, maximum: Duration, multiplier: Double, jitter: Double) {
      self.initial = initial
      self.maximum = maximum
      self.multiplier = multiplier
      self.jitter = jitter
    }

    /// 1 s, then ×1.6 up to 120 s, ±20 % jitter (gRPC's connection backoff).
    public static var defaults: Self {
      Self(initial: .seconds(1), maximum: .seconds(120), multiplier: 1.6, jitter: 0.2)
    }

    /// The delay before attempt `attempt + 1`: `initial × multiplier^(attempt-1)`, capped at `maximum`, then
    /// moved at random by up to ±`jitter`. Out-of-range settings are clamped (multiplier ≥ 1, jitter 0...1).
    public func delay(attempt: Int) -> Duration {
      let exponent = min(Double(max(attempt - 1, 0)), 64)
      let base = self.initial * pow(max(self.multiplier, 1), exponent)
      let capped = min(base, self.maximum)
      let jitter = min(max(self.jitter, 0), 1)
      return capped * (1 + Double.random(in: -jitter...jitter))
    }
  }

  private struct Waiter {
    var continuation: CheckedContinuation<ClientConnection, any Error>
    var waitForReady: Bool
  }

  private enum State {
    /// No connection; the next RPC asks for one.
    case idle
    /// A connection attempt is under way; RPCs wait for it.
    case connecting(waiters: [UInt64: Waiter])
    /// The last attempt failed; until the backoff delay ends, RPCs fail fast with its error,
    /// except `waitForReady` ones, which wait for the next attempt.
    case backingOff(failure: RPCError, waiters: [UInt64: Waiter], timer: Scheduled<Void>)
    case ready(ClientConnection)
    case shuttingDown(ClientConnection?)
    case closed
  }

  private let host: String
  private let port: Int
  private let config: Config
  private let logger: Logger
  private let eventLoopGroup: any EventLoopGroup
  private let sslContext: NIOSSLContext?
  private let serverHostname: String?
  private let methodConfig: MethodConfigLookup
  private let state = Mutex(State.idle)
  private let nextWaiterID = Atomic<UInt64>(0)
  private let demand: AsyncStream<Void>
  private let demandContinuation: AsyncStream<Void>.Continuation

  /// A transport for `host:port`. Throws if the TLS configuration is invalid.
  public init(
    host: String,
    port: Int,
    config: Config,
    logger: Logger = Logger(label: "redress.wire.client"),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) throws {
    self.host = host
    self.port = port
    self.config = config
    self.logger = logger
    self.eventLoopGroup = eventLoopGroup
    switch config.security {
    case .tls(let tls):
      do {
        self.sslContext = try tls.makeContext()
      } catch {
        throw RPCError(code: .invalidArgument, message: "Invalid client TLS configuration: \(error)", cause: error)
      }
      let name = tls.serverHostnameOverride ?? host
      // SNI carries host names only. For an IP address NIOSSL is given no name and verifies the
      // certificate's IP SANs against the address it connected to.
      let isIPAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
      self.serverHostname = isIPAddress ? nil : name
    case .plaintextForTestingOnly:
      self.sslContext = nil
      self.serverHostname = nil
    }
    self.methodConfig = MethodConfigLookup(config.serviceConfig)
    (self.demand, self.demandContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  /// The algorithm to compress a call's requests with: the one its options ask for, if enabled.
  private func requestCompression(_ requested: CompressionAlgorithm?) -> CompressionAlgorithm? {
    guard let requested, requested != .none,
      self.config.connection.compression.enabledAlgorithms.contains(requested)
    else { return nil }
    return requested
  }

  private var acceptEncoding: String {
    MessageCompression.acceptEncoding(self.config.connection.compression.enabledAlgorithms)
  }

  public var retryThrottle: RetryThrottle? {
    self.config.serviceConfig.retryThrottling.map { RetryThrottle(policy: $0) }
  }

  public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? {
    self.methodConfig[descriptor]
  }

  public func connect() async throws {
    await withTaskCancellationHandler {
      await self.runConnectionLoop()
    } onCancel: {
      self.demandContinuation.finish()
      let connection = self.state.withLock { state -> ClientConnection? in
        switch state {
        case .ready(let connection): return connection
        case .shuttingDown(let connection): return connection
        default: return nil
        }
      }
      connection?.close()
    }
    self.finishAll(RPCError(code: .unavailable, message: "The client transport stopped."))
  }

  private func runConnectionLoop() async {
    await withDiscardingTaskGroup { group in
      var attempt = 0
      for await _ in self.demand {
        guard self.isConnecting else { continue }
        attempt += 1
        do {
          let connection = try await ClientConnection.dial(
            host: self.host,
            port: self.port,
            sslContext: self.sslContext,
            serverHostname: self.serverHostname,
            config: self.config.connection,
            connectTimeout: self.config.connectTimeout,
            logger: self.logger,
            eventLoopGroup: self.eventLoopGroup,
            onDraining: { [weak self] in self?.connectionDraining() }
          )
          attempt = 0
          self.connected(connection)
          // Watched beside the loop, not in it: once the connection drains (a GOAWAY) new RPCs
          // need a new connection while its in-flight streams finish.
          group.addTask {
            await withTaskCancellationHandler {
              await connection.waitUntilClosed()
            } onCancel: {
              connection.close()
            }
            self.disconnected(connection)
          }
        } catch {
          let failure = (error as? RPCError) ?? RPCError(code: .unavailable, message: "\(error)", cause: error)
          self.logger.info("Connection attempt failed", metadata: ["target": "\(self.host):\(self.port)", "error": "\(failure.message)"])
          // The delay is an event-loop timer so that shutting down can end it at once.
          let delay = self.config.backoff.delay(attempt: attempt)
          let timer = self.eventLoopGroup.any().scheduleTask(in: TimeAmount(delay)) {}
          guard self.failed(failure, backoff: timer) else {
            timer.cancel()
            break
          }
          try? await withTaskCancellationHandler {
            try await timer.futureResult.get()
          } onCancel: {
            timer.cancel()
          }
          if self.backoffEnded() { self.demandContinuation.yield() }
        }
        if self.isClosedOrShuttingDown && !self.hasConnection { break }
      }
    }
  }

  private var isConnecting: Bool {
    self.state.withLock { state in
      if case .connecting = state { return true }
      return false
    }
  }

  private var isClosedOrShuttingDown: Bool {
    self.state.withLock { state in
      switch state {
      case .shuttingDown, .closed: return true
      default: return false
      }
    }
  }

  private var hasConnection: Bool {
    self.state.withLock { state in
      if case .shuttingDown(.some) = state { return true }
      return false
    }
  }

  private func connected(_ connection: ClientConnection) {
    let (waiters, shutdown) = self.state.withLock { state -> ([Waiter], Bool) in
      switch state {
      case .connecting(let waiters):
        state = .ready(connection)
        return (Array(waiters.values), false)
      case .shuttingDown(.none):
        state = .shuttingDown(connection)
        return ([], true)
      default:
        return ([], true)
      }
    }
    if shutdown { connection.beginGracefulShutdown() }
    for waiter in waiters { waiter.continuation.resume(returning: connection) }
  }

  private func disconnected(_ connection: ClientConnection) {
    self.state.withLock { state in
      switch state {
      case .ready(let current) where current === connection:
        state = .idle
      case .shuttingDown(let current) where current === connection:
        state = .closed
        self.demandContinuation.finish()
      default:
        break
      }
    }
  }

  /// Records a failed attempt and starts backing off; fails the RPCs that do not wait for
  /// readiness. Returns `false` if the transport is shutting down instead.
  private func failed(_ failure: RPCError, backoff timer: Scheduled<Void>) -> Bool {
    let (failing, backOff) = self.state.withLock { state -> ([Waiter], Bool) in
      switch state {
      case .connecting(let waiters):
        let patient = waiters.filter { $0.value.waitForReady }
        let impatient = waiters.values.filter { !$0.waitForReady }
        state = .backingOff(failure: failure, waiters: patient, timer: timer)
        return (impatient, true)
      case .shuttingDown:
        state = .closed
        self.demandContinuation.finish()
        return ([], false)
      default:
        return ([], false)
      }
    }
    for waiter in failing {
      waiter.continuation.resume(
        throwing: RPCError(
          code: .unavailable,
          message: failure.message,
          cause: failure.cause
        )
      )
    }
    return backOff
  }

  /// Ends a backoff: dials again at once if RPCs wait for it, else waits for the next RPC.
  private func backoffEnded() -> Bool {
    self.state.withLock { state in
      guard case .backingOff(_, let waiters, _) = state else { return false }
      if waiters.isEmpty {
        state = .idle
        return false
      }
      state = .connecting(waiters: waiters)
      return true
    }
  }

  private func connectionDraining() {
    self.state.withLock { state in
      if case .ready(let connection) = state {
        connection.markDraining()
        state = .idle
      }
    }
  }

  private func finishAll(_ error: RPCError) {
    let waiters = self.state.withLock { state -> [Waiter] in
      defer { state = .closed }
      switch state {
      case .connecting(let waiters), .backingOff(_, let waiters, _): return Array(waiters.values)
      default: return []
      }
    }
    for waiter in waiters { waiter.continuation.resume(throwing: error) }
  }

  public func beginGracefulShutdown() {
    let (connection, waiters) = self.state.withLock { state -> (ClientConnection?, [Waiter]) in
      switch state {
      case .idle:
        state = .closed
        return (nil, [])
      case .backingOff(_, let waiters, let timer):
        state = .closed
        timer.cancel()
        return (nil, Array(waiters.values))
      case .connecting(let waiters):
        state = .shuttingDown(nil)
        return (nil, Array(waiters.values))
      case .ready(let connection):
        state = .shuttingDown(connection)
        return (connection, [])
      case .shuttingDown, .closed:
        return (nil, [])
      }
    }
    for waiter in waiters {
      waiter.continuation.resume(throwing: RPCError(code: .failedPrecondition, message: "The client transport is shutting down."))
    }
    connection?.beginGracefulShutdown()
    if connection == nil && !self.isConnecting { self.demandContinuation.finish() }
  }

  /// Returns a usable connection, dialling one if needed.
  private func acquireConnection(waitForReady: Bool) async throws -> ClientConnection {
    enum Decision {
      case use(ClientConnection)
      case wait(UInt64)
      case fail(RPCError)
    }
    let id = self.nextWaiterID.add(1, ordering: .relaxed).newValue
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ClientConnection, any Error>) in
        let decision = self.state.withLock { state -> Decision in
          let waiter = Waiter(continuation: continuation, waitForReady: waitForReady)
          switch state {
          case .ready(let connection) where connection.isUsable:
            return .use(connection)
          case .backingOff(let failure, var waiters, let timer):
            // Within the backoff delay an RPC fails fast with the last attempt's error rather
            // than dialling again; a waitForReady one waits for the next attempt.
            guard waitForReady else {
              return .fail(RPCError(code: .unavailable, message: failure.message, cause: failure.cause))
            }
            waiters[id] = waiter
            state = .backingOff(failure: failure, waiters: waiters, timer: timer)
            return .wait(id)
          case .ready, .idle:
            state = .connecting(waiters: [id: waiter])
            self.demandContinuation.yield()
            return .wait(id)
          case .connecting(var waiters):
            waiters[id] = waiter
            state = .connecting(waiters: waiters)
            return .wait(id)
          case .shuttingDown, .closed:
            return .fail(RPCError(code: .failedPrecondition, message: "The client transport is shutting down or closed."))
          }
        }
        switch decision {
        case .use(let connection):
          continuation.resume(returning: connection)
        case .fail(let error):
          continuation.resume(throwing: error)
        case .wait:
          if Task.isCancelled { self.cancelWaiter(id) }
        }
      }
    } onCancel: {
      self.cancelWaiter(id)
    }
  }

  private func cancelWaiter(_ id: UInt64) {
    let waiter = self.state.withLock { state -> Waiter? in
      switch state {
      case .connecting(var waiters):
        guard let waiter = waiters.removeValue(forKey: id) else { return nil }
        state = .connecting(waiters: waiters)
        return waiter
      case .backingOff(let failure, var waiters, let timer):
        guard let waiter = waiters.removeValue(forKey: id) else { return nil }
        state = .backingOff(failure: failure, waiters: waiters, timer: timer)
        return waiter
      default:
        return nil
      }
    }
    waiter?.continuation.resume(throwing: RPCError(code: .cancelled, message: "The RPC was cancelled while waiting for a connection."))
  }

  public func withStream<T: Sendable>(
    descriptor: MethodDescriptor,
    options: CallOptions,
    _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
  ) async throws -> T {
    let waitForReady = options.waitForReady ?? false
    var connection = try await self.acquireConnection(waitForReady: waitForReady)
    let opened: (InboundQueue<RPCResponsePart<WireBytes>>, StreamHandle)
    do {
      opened = try await connection.openStream()
    } catch let error as RPCError where error.code == .unavailable {
      // The connection started draining between picking it and opening the stream: one more
      // try on a fresh connection.
      connection.markDraining()
      self.connectionDraining()
      connection = try await self.acquireConnection(waitForReady: waitForReady)
      opened = try await connection.openStream()
    }
    let (queue, handle) = opened
    // Once the trailers arrived the connection already removed the stream and `close()` would be
    // a no-op on the event loop: skip the hop.
    defer { if !queue.isFinished { handle.close() } }
    let stream = RPCStream(
      descriptor: descriptor,
      inbound: RPCAsyncSequence<RPCResponsePart<WireBytes>, any Error>(wrapping: ClientInboundSequence(queue: queue)),
      outbound: RPCWriter.Closable(
        wrapping: ClientStreamWriter(
          handle: handle,
          path: descriptor.path,
          compression: self.requestCompression(options.compression),
          acceptEncoding: self.acceptEncoding
        )
      )
    )
    let context = ClientContext(descriptor: descriptor, remotePeer: connection.remotePeer, localPeer: connection.localPeer)
    return try await closure(stream, context)
  }
}

/// Finds the method config for a method: exact method, then its service, then the default.
struct MethodConfigLookup: Sendable {
  private var byMethod: [String: MethodConfig] = [:]
  private var byService: [String: MethodConfig] = [:]
  private var fallback: MethodConfig?

  init(_ serviceConfig: ServiceConfig) {
    for config in serviceConfig.methodConfig {
      for name in config.names {
        if name.method.isEmpty {
          if name.service.isEmpty {
            self.fallback = config
          } else {
            self.byService[name.service] = config
          }
        } else {
          self.byMethod["\(name.service)/\(name.method)"] = config
        }
      }
    }
  }

  subscript(descriptor: MethodDescriptor) -> MethodConfig? {
    self.byMethod["\(descriptor.service.fullyQualifiedService)/\(descriptor.method)"]
      ?? self.byService[descriptor.service.fullyQualifiedService]
      ?? self.fallback
  }
}
