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

  @Test("over the failed-authentication limit an address is refused before its credentials are evaluated, even a correct token (issue 11, finding 4)")
  func failedAttemptsLimited() async throws {
    let clock = ManualWallClock()
    let failures = RateLimiter(config: .init(ratePerSecond: 1, burst: 2), clock: clock)
    let interceptor = AuthenticationInterceptor(directory: Self.directory, rateLimiter: nil, failedAuthentications: failures)
    for _ in 0..<2 {
      let error = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "guess") }
      #expect(error?.code == .unauthenticated)
    }
    let limited = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "guess") }
    #expect(limited?.code == .resourceExhausted)
    #expect(limited?.metadata[stringValues: "retry-after-ms"].first(where: { _ in true }) == "1000")
    // Before the fix the check came after the token: a right guess mid-lockout still got in.
    let rightGuess = await #expect(throws: RPCError.self) { try await Self.call(interceptor, token: "good") }
    #expect(rightGuess?.code == .resourceExhausted)
    let elsewhere = await #expect(throws: RPCError.self) {
      try await Self.call(interceptor, token: "guess", peer: "ipv4:10.0.0.8:50000")
    }
    #expect(elsewhere?.code == .unauthenticated, "another address has its own budget")
    #expect(try await Self.call(interceptor, token: "good", peer: "ipv4:10.0.0.9:50000") == "tool")
    clock.advance(by: 1)
    #expect(try await Self.call(interceptor, token: "good") == "tool", "a token back in the bucket lets the address in")
    #expect(AuthenticationInterceptor.address(of: "ipv4:10.0.0.7:50000") == "ipv4:10.0.0.7")
  }

  @Test("the rate limiter keeps a bounded number of buckets however many keys it sees")
  func bucketsBounded() {
    let limiter = RateLimiter(config: .init(ratePerSecond: 1, burst: 5), clock: ManualWallClock())
    for index in 0..<(RateLimiter.pruneAbove * 3) {
      _ = limiter.acquire(for: "ipv4:10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)")
    }
    #expect(limiter.bucketCount <= RateLimiter.pruneAbove)
  }
}

/// What the handler saw as the caller.
private final class SeenCaller: Sendable {
  let name = Mutex<String?>(nil)
}
