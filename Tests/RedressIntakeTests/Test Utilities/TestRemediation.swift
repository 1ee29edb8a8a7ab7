import Foundation
import GRPCCore
import Logging
import NIOCore
import NIOPosix
import RedressSchemas
import RedressService
import RedressWire
import ServiceLifecycle
import Synchronization

/// A small real remediation service for outbox tests: `OpenRemedy` only, idempotent on incident id,
/// callable only by the `service` role, counting every call per incident.
final class TestRemediationService: Redress_V1_Remediation.SimpleServiceProtocol, Sendable {
  private struct State {
    var remedies: [String: String] = [:]
    var calls: [String: Int] = [:]
    var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    var busyLeft = 0
    var callTimes: [ContinuousClock.Instant] = []
  }

  private let state = Mutex(State())
  /// Incidents with this title are refused with `failedPrecondition`, as a remediation rule violation would be.
  private let refusedTitle: String?

  /// `resourceExhausted` answers carry this `retry-after-ms`.
  private let retryAfterMS: Int

  /// - Parameters:
  ///   - refusedTitle: Incidents with this title are refused with `failedPrecondition`.
  ///   - busyCalls: The first this many calls are answered `resourceExhausted` with `retry-after-ms`, as a
  ///     rate limit would.
  init(refusingTitle refusedTitle: String? = nil, busyCalls: Int = 0, retryAfterMS: Int = 100) {
    self.refusedTitle = refusedTitle
    self.retryAfterMS = retryAfterMS
    self.state.withLock { $0.busyLeft = busyCalls }
  }

  /// When each OpenRemedy call arrived.
  var callTimes: [ContinuousClock.Instant] { self.state.withLock { $0.callTimes } }

  /// Remedy id by incident id.
  var remedies: [String: String] { self.state.withLock { $0.remedies } }
  /// OpenRemedy calls by incident id.
  var calls: [String: Int] { self.state.withLock { $0.calls } }

  /// Returns once at least `count` distinct incidents have remedies.
  func waitForRemedies(_ count: Int) async {
    await withCheckedContinuation { continuation in
      let ready = self.state.withLock { state in
        if state.remedies.count >= count { return true }
        state.waiters.append((count, continuation))
        return false
      }
      if ready { continuation.resume() }
    }
  }

  func openRemedy(
    request: Redress_V1_OpenRemedyRequest,
    context: ServerContext
  ) async throws -> Redress_V1_OpenRemedyResponse {
    _ = try Caller.require(anyOf: .service)
    let busy = self.state.withLock { state -> Bool in
      state.callTimes.append(.now)
      guard state.busyLeft > 0 else { return false }
      state.busyLeft -= 1
      return true
    }
    if busy {
      throw RPCError(
        code: .resourceExhausted,
        message: "over the rate limit",
        metadata: [AuthenticationInterceptor.retryAfterKey: "\(self.retryAfterMS)"]
      )
    }
    let incidentID = request.incident.id
    guard !incidentID.isEmpty else {
      throw RPCError(code: .invalidArgument, message: "incident.id is required")
    }
    if let refused = self.refusedTitle, request.incident.report.title == refused {
      self.state.withLock { $0.calls[incidentID, default: 0] += 1 }
      throw RPCError(code: .failedPrecondition, message: "this incident cannot be opened")
    }
    let (remedyID, alreadyOpen, ready) = self.state.withLock { state in
      state.calls[incidentID, default: 0] += 1
      if let existing = state.remedies[incidentID] {
        return (existing, true, [CheckedContinuation<Void, Never>]())
      }
      let id = "rem_\(state.remedies.count + 1)"
      state.remedies[incidentID] = id
      let count = state.remedies.count
      let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
      state.waiters.removeAll { $0.count <= count }
      return (id, false, ready)
    }
    for continuation in ready { continuation.resume() }
    return .with {
      $0.remedy = .with {
        $0.id = remedyID
        $0.incidentID = incidentID
        $0.tenant = request.incident.tenant
      }
      $0.alreadyOpen = alreadyOpen
    }
  }

  func getRemedy(request: Redress_V1_GetRemedyRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    throw RPCError(code: .unimplemented, message: "not in the test remediation service")
  }

  func listRemedies(
    request: Redress_V1_ListRemediesRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ListRemediesResponse {
    throw RPCError(code: .unimplemented, message: "not in the test remediation service")
  }

  func watchRemedy(
    request: Redress_V1_WatchRemedyRequest,
    response: RPCWriter<Redress_V1_RemedyUpdate>,
    context: ServerContext
  ) async throws {
    throw RPCError(code: .unimplemented, message: "not in the test remediation service")
  }

  func act(request: Redress_V1_ActRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    throw RPCError(code: .unimplemented, message: "not in the test remediation service")
  }
}

/// Runs `service` as remediation on 127.0.0.1:`port` over the Redress wire with mutual TLS required; the
/// intake-service certificate maps to an identity with the `service` role.
func withTestRemediation<T: Sendable>(
  _ service: TestRemediationService,
  port: Int,
  _ body: () async throws -> T
) async throws -> T {
  var logger = Logger(label: "test-remediation")
  logger.logLevel = .warning
  let directory = try IdentityDirectory(entries: [
    .init(name: "intake", tenant: "redress", roles: [.service], certificateNames: ["intake-service"])
  ])
  let server = try RedressServer(
    config: .init(
      host: "127.0.0.1", port: port,
      security: try IntakeTestPKI.shared.serverSecurity(clientCertificates: .required)),
    services: [service],
    directory: directory,
    rateLimiter: nil,
    logger: logger
  )
  return try await withThrowingTaskGroup(of: Void.self) { tasks in
    tasks.addTask { try await server.run() }
    do {
      _ = try await server.listeningAddress
      let result = try await body()
      server.beginGracefulShutdown()
      try await tasks.waitForAll()
      return result
    } catch {
      server.beginGracefulShutdown()
      try? await tasks.waitForAll()
      throw error
    }
  }
}

/// A port nothing listens on right now, for a server started later.
///
/// Chosen below Linux's ephemeral range (32768-60999): a port the kernel handed out for a port-0 bind could be
/// handed out again to another test's server or to a client socket before the later server binds it (seen as
/// "Address already in use" in a full-suite run). Servers bound to port 0 and client sockets never take a
/// port from 20000-32767, so only another call of this function could, and it picks at random and checks.
func unusedPort() async throws -> Int {
  var lastError: (any Error)?
  for _ in 0..<50 {
    let candidate = Int.random(in: 20_000..<32_768)
    do {
      let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: candidate).get()
      try await channel.close()
      return candidate
    } catch {
      lastError = error
    }
  }
  throw lastError ?? CancellationError()
}
