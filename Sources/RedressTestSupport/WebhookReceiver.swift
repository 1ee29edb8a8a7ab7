public import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
public import NIOSSL
import ServiceLifecycle
import Synchronization

/// A real HTTPS webhook receiver for tests (Hummingbird on 127.0.0.1): records every request and answers each
/// with the next scripted ``Reply`` (then ``fallback``).
public final class WebhookReceiver: Sendable {
  /// One request as received.
  public struct Request: Sendable {
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: Data
    public var path: String
    /// How the receiver answered it.
    public var reply: Reply = .status(200)

    public var eventID: String { self.headers["redress-event-id"] ?? "" }
    public var eventType: String { self.headers["redress-event-type"] ?? "" }
    public var signature: String { self.headers["redress-signature"] ?? "" }
  }

  /// How to answer one request.
  public enum Reply: Sendable, Hashable {
    /// Answer at once with `status` (and `Retry-After` when given).
    case status(Int, retryAfter: String? = nil)
    /// Answer 200 only after `delay` (longer than the sender's timeout: the sender gives up first).
    case stall(Duration)
    /// Answer 302 to `location`.
    case redirect(String)
  }

  private struct State {
    var requests: [Request] = []
    var replies: [Reply] = []
    var fallback: Reply = .status(200)
    var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
  }
  private let state = Mutex(State())

  public init() {}

  /// Every request so far, in arrival order.
  public var requests: [Request] { self.state.withLock { $0.requests } }

  /// The requests answered 200 at once (delivered, as the sender sees it).
  public var delivered: [Request] { self.requests.filter { $0.reply == .status(200) } }

  /// Answers the next requests with `replies`, in order, before falling back.
  public func script(_ replies: [Reply]) {
    self.state.withLock { $0.replies += replies }
  }

  /// The answer once the script is used up (200 unless set).
  public func setFallback(_ reply: Reply) {
    self.state.withLock { $0.fallback = reply }
  }

  /// Returns once at least `count` requests arrived (bound it with `withTimeout`).
  public func waitForRequests(_ count: Int) async -> [Request] {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let ready = self.state.withLock { state -> Bool in
        if state.requests.count >= count { return true }
        state.waiters.append((count, continuation))
        return false
      }
      if ready { continuation.resume() }
    }
    return self.requests
  }

  private func record(_ request: Request) -> Reply {
    let (reply, ready) = self.state.withLock { state -> (Reply, [CheckedContinuation<Void, Never>]) in
      let reply = state.replies.isEmpty ? state.fallback : state.replies.removeFirst()
      var request = request
      request.reply = reply
      state.requests.append(request)
      let ready = state.waiters.filter { $0.count <= state.requests.count }.map(\.continuation)
      state.waiters.removeAll { $0.count <= state.requests.count }
      return (reply, ready)
    }
    for continuation in ready { continuation.resume() }
    return reply
  }

  /// Serves with the PEM certificate chain and key in these files (see ``serve(certificateChain:privateKey:_:)``).
  public func serve<T: Sendable>(
    certificatePEMFile: String,
    privateKeyPEMFile: String,
    _ body: @Sendable (_ port: Int) async throws -> T
  ) async throws -> T {
    try await self.serve(
      certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePEMFile),
      privateKey: try NIOSSLPrivateKey(file: privateKeyPEMFile, format: .pem),
      body)
  }

  /// Serves on 127.0.0.1 (a free port) with `certificateChain` and `privateKey` while `body` runs.
  public func serve<T: Sendable>(
    certificateChain: [NIOSSLCertificate],
    privateKey: NIOSSLPrivateKey,
    _ body: @Sendable (_ port: Int) async throws -> T
  ) async throws -> T {
    try await self.serve(tls: (certificateChain, privateKey), body)
  }

  /// Serves plain HTTP on 127.0.0.1 (an OTLP/HTTP collector stand-in) while `body` runs.
  public func servePlaintext<T: Sendable>(_ body: @Sendable (_ port: Int) async throws -> T) async throws -> T {
    try await self.serve(tls: nil, body)
  }

  private func serve<T: Sendable>(
    tls credentials: ([NIOSSLCertificate], NIOSSLPrivateKey)?,
    _ body: @Sendable (_ port: Int) async throws -> T
  ) async throws -> T {
    let router = Router()
    router.post("**") { request, context -> Response in
      let bytes = try await request.body.collect(upTo: 1 << 20)
      var headers: [String: String] = [:]
      for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
      let reply = self.record(Request(headers: headers, body: Data(buffer: bytes), path: request.uri.path))
      switch reply {
      case .status(let code, let retryAfter):
        var fields = HTTPFields()
        if let retryAfter { fields[.retryAfter] = retryAfter }
        return Response(status: .init(code: code), headers: fields)
      case .stall(let delay):
        try? await Task.sleep(for: delay)
        return Response(status: .ok)
      case .redirect(let location):
        return Response(status: .found, headers: [.location: location])
      }
    }
    let server: HTTPServerBuilder
    if let (certificateChain, privateKey) = credentials {
      var tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
      tls.minimumTLSVersion = .tlsv12
      server = try .tls(.http1(), tlsConfiguration: tls)
    } else {
      server = .http1()
    }
    var logger = Logger(label: "webhook-receiver")
    logger.logLevel = .warning
    let port = PortBox()
    let app = Application(
      router: router,
      server: server,
      configuration: .init(address: .hostname("127.0.0.1", port: 0)),
      onServerRunning: { channel in port.set(channel.localAddress?.port ?? 0) },
      logger: logger
    )
    let group = ServiceGroup.boundedForTests(services: [app], logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      do {
        let result = try await body(try await port.value)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
      } catch {
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        throw error
      }
    }
  }
}

/// The receiver's port once it listens.
private final class PortBox: Sendable {
  private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

  func set(_ port: Int) {
    let waiters = self.state.withLock { state -> [CheckedContinuation<Int, Never>] in
      state.port = port
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(returning: port) }
  }

  var value: Int {
    get async {
      await withCheckedContinuation { continuation in
        let port = self.state.withLock { state -> Int? in
          if let port = state.port { return port }
          state.waiters.append(continuation)
          return nil
        }
        if let port { continuation.resume(returning: port) }
      }
    }
  }
}
