import GRPCCore
import Synchronization
import Testing

@testable import RedressService

@Suite("Authentication interceptor")
struct AuthenticationInterceptorTests {
  static let directory = try! IdentityDirectory(entries: [
    .init(name: "tool", tenant: "t1", roles: [.read], tokenSHA256: [IdentityDirectory.digest(ofToken: "good")])
  ])

  static func call(
    _ interceptor: AuthenticationInterceptor,
    token: String?,
    peer: String = "ipv4:10.0.0.7:50000"
  ) async throws -> String? {
    var metadata: Metadata = [:]
    if let token { metadata.addString("Bearer \(token)", forKey: "authorization") }
    let request = StreamingServerRequest<String>(metadata: metadata, messages: RPCAsyncSequence(wrapping: AsyncThrowingStream { $0.finish() }))
    let context = ServerContext(
      descriptor: MethodDescriptor(fullyQualifiedService: "redress.v1.Intake", method: "GetIncident"),
      remotePeer: peer,
      localPeer: "ipv4:127.0.0.1:7443",
      cancellation: ServerContext.RPCCancellationHandle()
    )
    let seen = SeenCaller()
    let _: StreamingServerResponse<String> = try await interceptor.intercept(request: request, context: context) { _, _ in
      seen.name.withLock { $0 = Caller.current?.name }
      return StreamingServerResponse(single: ServerResponse(message: "ok"))
    }
    return seen.name.withLock { $0 }
  }

  @Test("a known token binds the caller; an unknown one is unauthenticated")
  func tokens() async throws {
    let interceptor = AuthenticationInterceptor(directory: Self.directory, rateLimiter: nil)
    #expect(try await Self.call(interceptor, token: "good") == "tool")
    let error = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "bad") }
    #expect(error?.code == .unauthenticated)
    let missing = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: nil) }
    #expect(missing?.code == .unauthenticated)
  }

  @Test("failed authentications are rate limited per address, with a retry-after; other addresses are not")
  func failedAttemptsLimited() async throws {
    let clock = ManualWallClock()
    let limiter = RateLimiter(config: .init(ratePerSecond: 1, burst: 2), clock: clock)
    let interceptor = AuthenticationInterceptor(directory: Self.directory, rateLimiter: limiter)
    for _ in 0..<2 {
      let error = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "guess") }
      #expect(error?.code == .unauthenticated)
    }
    let limited = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "guess") }
    #expect(limited?.code == .resourceExhausted)
    #expect(limited?.metadata[stringValues: "retry-after-ms"].first(where: { _ in true }) == "1000")
    let elsewhere = await #expect(throws: RPCError.self) {
      try await Self.call(interceptor, token: "guess", peer: "ipv4:10.0.0.8:50000")
    }
    #expect(elsewhere?.code == .unauthenticated, "another address has its own budget")
    #expect(AuthenticationInterceptor.address(of: "ipv4:10.0.0.7:50000") == "ipv4:10.0.0.7")
  }
}

/// What the handler saw as the caller.
private final class SeenCaller: Sendable {
  let name = Mutex<String?>(nil)
}
