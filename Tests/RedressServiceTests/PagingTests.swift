import Foundation
import Testing

@testable import RedressService

@Suite("Page tokens and ids")
struct PagingTests {
  @Test("a page token round-trips and is refused for other filters")
  func pageTokenBinding() throws {
    let token = PageToken(afterSortKey: 42, afterID: "inc_1", filters: "abc")
    let decoded = try PageToken.decode(token.encoded(), expectedFilters: "abc")
    #expect(decoded == token)
    #expect(throws: PageToken.Invalid.self) { try PageToken.decode(token.encoded(), expectedFilters: "other") }
    #expect(throws: PageToken.Invalid.self) { try PageToken.decode("not-a-token!", expectedFilters: "abc") }
    #expect(try PageToken.decode("", expectedFilters: "abc") == nil)
  }

  @Test("resource ids carry the prefix, 26 base32 characters, and sort by creation time")
  func resourceIDs() {
    let earlier = ResourceID.make(prefix: "inc", at: Date(timeIntervalSince1970: 1_700_000_000))
    let later = ResourceID.make(prefix: "inc", at: Date(timeIntervalSince1970: 1_700_000_001))
    #expect(earlier.hasPrefix("inc_"))
    #expect(earlier.count == 4 + 26)
    #expect(earlier < later)
    #expect(ResourceID.make(prefix: "inc") != ResourceID.make(prefix: "inc"))
  }
}

@Suite("Rate limiter")
struct RateLimiterTests {
  @Test("a bucket allows its burst, refuses with a retry-after, and refills with time")
  func tokenBucket() {
    let clock = ManualWallClock()
    let limiter = RateLimiter(config: .init(ratePerSecond: 2, burst: 3), clock: clock)
    #expect((0..<3).allSatisfy { _ in limiter.acquire(for: "a") == .allowed })
    guard case .limited(let retryAfter) = limiter.acquire(for: "a") else {
      Issue.record("the fourth call should be limited")
      return
    }
    #expect(abs(retryAfter - 0.5) < 0.001)
    #expect(limiter.acquire(for: "b") == .allowed, "buckets are per identity")
    clock.advance(by: 0.5)
    #expect(limiter.acquire(for: "a") == .allowed)
    #expect(limiter.acquire(for: "a") != .allowed)
  }
}

@Suite("Settings")
struct SettingsTests {
  @Test("settings read typed values and name the key of a malformed one")
  func typedValues() async throws {
    let reader = try await SettingsReader.inMemory(["outbox.max_backoff_ms": "3000", "flag": "true", "bad": "x"])
    #expect(try reader.int("outbox.max_backoff_ms") == 3000)
    #expect(try reader.bool("flag") == true)
    #expect(try reader.int("missing") == nil)
    #expect(throws: ServiceSettings.SettingsError.self) { try reader.int("bad") }
  }
}
