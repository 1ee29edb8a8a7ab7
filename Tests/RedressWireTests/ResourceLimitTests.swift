import Foundation
import GRPCCore
import NIOCore
import Testing

@testable import RedressWire

/// Limits that hold before any authentication: what a stranger's connections can make a server buffer, how
/// long a stalled request may hold a stream, and how many connections one address may keep (issue 11).
@Suite("Resource limits before authentication")
struct ResourceLimitTests {
  static let unaryCallPath = "/grpc.testing.TestService/UnaryCall"

  /// Sends `octets` of one message on `stream` in 16 KiB fragments without ending it.
  static func sendPartialMessage(_ raw: RawWireClient, stream: UInt32, octets: Int) async throws {
    var frames: [Frame] = [.headers(streamID: stream, path: Self.unaryCallPath, metadata: [:], endStream: false)]
    var left = octets
    while left > 0 {
      let size = min(left, 16_384)
      frames.append(.message(streamID: stream, fragment: ByteBuffer(repeating: 0x41, count: size), flags: []))
      left -= size
    }
    try await raw.send(frames)
  }

  /// The status each of `streams` ended with, reading the server's frames until every one has ended.
  static func statuses(_ raw: RawWireClient, of streams: Set<UInt32>, timeout: Duration = .seconds(10)) async throws -> [UInt32: Status] {
    var ended: [UInt32: Status] = [:]
    while ended.count < streams.count {
      let frame = try await raw.nextFrame(timeout: timeout)
      switch frame {
      case .trailers(let id, let status, _) where streams.contains(id):
        ended[id] = status
      case .resetStream(let id, let code) where streams.contains(id):
        ended[id] = Status(code: .unknown, message: "RST_STREAM \(code)")
      case .goAway(_, let code, let debug):
        throw RawWireClient.Failure(description: "GOAWAY \(code) '\(debug)' with \(ended.count) of \(streams.count) ended")
      default:
        continue
      }
    }
    return ended
  }

  static func waitUntil(_ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
      try #require(ContinuousClock.now < deadline, "condition not met within 10 s")
      try await Task.sleep(for: .milliseconds(20))
    }
  }

  @Test("unfinished messages on many streams stop at the connection's and then the server's budget, and all is given back")
  func inboundBudgets() async throws {
    // 8 streams × 512 KiB against 1 MiB per connection and 2 MiB per server: before the fix each stream buffered
    // up to the 4 MiB message limit, 256 streams about 1 GiB.
    try await withWireServer(
      services: [InteropTestService()],
      configure: {
        $0.connection.maxBufferedInboundBytes = 1024 * 1024
        $0.limits.maxBufferedInboundBytes = 2 * 1024 * 1024
      }
    ) { server in
      let budget = server.transport.inboundBudget
      let first = try await RawWireClient.connect(port: server.port)
      let second = try await RawWireClient.connect(port: server.port)
      let third = try await RawWireClient.connect(port: server.port)
      for raw in [first, second, third] { _ = try await raw.handshake() }
      let streams: [UInt32] = [1, 3, 5, 7, 9, 11, 13, 15]

      for id in streams { try await Self.sendPartialMessage(first, stream: id, octets: 512 * 1024) }
      let firstStatuses = try await Self.statuses(first, of: Set(streams[2...]))
      #expect(firstStatuses.values.allSatisfy { $0.code == .resourceExhausted && $0.message.contains("The connection has") })
      #expect(budget.inUse == 1024 * 1024)

      for id in streams { try await Self.sendPartialMessage(second, stream: id, octets: 512 * 1024) }
      _ = try await Self.statuses(second, of: Set(streams[2...]))
      #expect(budget.inUse == 2 * 1024 * 1024)

      // The server's budget is spent: the third connection's very first message is refused.
      try await Self.sendPartialMessage(third, stream: 1, octets: 16_384)
      let thirdStatus = try await Self.statuses(third, of: [1])
      #expect(thirdStatus[1]?.code == .resourceExhausted)
      #expect(thirdStatus[1]?.message.contains("The server has") == true)
      #expect(budget.inUse <= 2 * 1024 * 1024)

      // A client that goes away gives back what it held; a new request then fits again.
      try await first.channel.close()
      try await Self.waitUntil { budget.inUse == 1024 * 1024 }
      let answer = try await third.emptyCall(stream: 3)
      #expect(answer.status?.code == .ok)
      try await second.channel.close()
      try await third.channel.close()
      try await Self.waitUntil { budget.inUse == 0 }
    }
  }

  @Test("a request that does not arrive within the request timeout ends with deadlineExceeded and frees its buffer")
  func requestTimeout() async throws {
    try await withWireServer(
      services: [InteropTestService()],
      configure: { $0.connection.requestTimeout = .milliseconds(300) }
    ) { server in
      try await RawWireClient.withConnection(port: server.port) { raw in
        _ = try await raw.handshake()
        // Stream 1: HEADERS only. Stream 3: HEADERS and half a message. Before the fix both stayed open for good.
        try await raw.send(.headers(streamID: 1, path: Self.unaryCallPath, metadata: [:], endStream: false))
        try await Self.sendPartialMessage(raw, stream: 3, octets: 40_000)
        let statuses = try await Self.statuses(raw, of: [1, 3])
        for id: UInt32 in [1, 3] {
          #expect(statuses[id]?.code == .deadlineExceeded, "stream \(id): \(String(describing: statuses[id]))")
          #expect(statuses[id]?.message.contains("request timeout") == true)
        }
        try await Self.waitUntil { server.transport.inboundBudget.inUse == 0 }
        // A prompt request on the same connection is unaffected.
        #expect(try await raw.emptyCall(stream: 5).status?.code == .ok)
      }
    }
  }

  @Test("the server refuses a client offering only versions 2...3 with exactly the GOAWAY docs/PROTOCOL.md §3.2 shows")
  func versionRefusalMatchesSpec() async throws {
    let expected = try ProtocolDocument.load().octets("goaway-version-unsupported")
    var parser = FrameParser(expectingPreface: true)
    parser.append(ByteBuffer(bytes: expected))
    let documented = try #require(try parser.next())
    try await withWireServer(services: [InteropTestService()]) { server in
      try await RawWireClient.withConnection(port: server.port) { raw in
        try await raw.send(Array("RDRS\r\n".utf8) + [2, 3])
        let seen = try await raw.waitForClose()
        #expect(seen == [documented], "the server sent \(seen); the spec shows \(documented)")
      }
    }
  }

  @Test("trailers that cannot fit the client's MAX_METADATA_SIZE are cut to fit, or the stream is reset when nothing fits (PROTOCOL.md §9.2)")
  func trailersWithinClientLimits() async throws {
    try await withWireServer(services: [InteropTestService()]) { server in
      // 40 octets: an OK status fits, the server's replacement message is cut to fit.
      try await RawWireClient.withConnection(port: server.port) { raw in
        _ = try await raw.handshake(settings: [Setting(.maxMetadataSize, 40)])
        #expect(try await raw.emptyCall(stream: 1).status?.code == .ok)
        // An unknown method's status message is longer than 40 octets: replaced by INTERNAL, cut to fit.
        try await raw.send(
          .headers(streamID: 3, path: "/grpc.testing.TestService/NoSuchMethod", metadata: [:], endStream: false),
          .message(streamID: 3, fragment: ByteBuffer(), flags: [.endMessage, .endStream])
        )
        let answer = try await raw.answer(on: 3)
        #expect(answer.status?.code == .internalError, "\(answer.frames)")
        #expect((answer.status?.message.utf8.count ?? .max) <= 38)
        #expect(answer.status?.message.hasPrefix("The server could not send") == true)
      }
      // 1 octet: not even an empty metadata block (2 octets) fits: RST_STREAM METADATA_TOO_LARGE.
      try await RawWireClient.withConnection(port: server.port) { raw in
        _ = try await raw.handshake(settings: [Setting(.maxMetadataSize, 1)])
        let answer = try await raw.emptyCall(stream: 1)
        guard case .resetStream(_, let code) = answer.frames.last else {
          Issue.record("expected RST_STREAM, got \(answer.frames)")
          return
        }
        #expect(code == .metadataTooLarge)
      }
    }
  }

  @Test("connections past the per-address cap are closed at once; one slot frees when a connection ends")
  func connectionCaps() async throws {
    try await withWireServer(
      services: [InteropTestService()],
      configure: { $0.limits.maxConnectionsPerAddress = 2 }
    ) { server in
      let first = try await RawWireClient.connect(port: server.port)
      let second = try await RawWireClient.connect(port: server.port)
      _ = try await first.handshake()
      _ = try await second.handshake()
      #expect(server.transport.admission.count == 2)

      let refused = try await RawWireClient.connect(port: server.port)
      await #expect(throws: (any Error).self) { _ = try await refused.handshake(timeout: .seconds(5)) }
      try? await refused.channel.close()
      #expect(server.transport.admission.count == 2)

      try await first.channel.close()
      try await Self.waitUntil { server.transport.admission.count == 1 }
      let again = try await RawWireClient.connect(port: server.port)
      _ = try await again.handshake()
      #expect(try await again.emptyCall(stream: 1).status?.code == .ok)
      try await again.channel.close()
      try await second.channel.close()
    }
  }
}
