import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import RedressSchemas
import RedressWire
import Testing

@testable import RedressService

/// Standard gRPC over HTTP/2 next to the wire (issue 12): served by the same server, and held to the wire's
/// limits before authentication (the inbound budget and the request-arrival timeout, which the HTTP/2 transport
/// does not have on its own).
@Suite("gRPC over HTTP/2 listener")
struct GRPCHTTP2ListenerTests {
  /// A gRPC length prefix (not compressed) for a message of `length` octets, followed by `payload` octets of it.
  static func data(length: Int, payload: Int, endStream: Bool = false) -> HTTP2Frame.FramePayload {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(length))
    buffer.writeRepeatingByte(0x41, count: payload)
    return .data(.init(data: .byteBuffer(buffer), endStream: endStream))
  }

  static func more(_ octets: Int, endStream: Bool = false) -> HTTP2Frame.FramePayload {
    .data(.init(data: .byteBuffer(ByteBuffer(repeating: 0x41, count: octets)), endStream: endStream))
  }

  /// An active stream channel with a guard drawing on `budget`.
  static func stream(_ budget: InboundBudget, _ requestTimeout: Duration?) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel(handler: HTTP2RequestGuard(budget: budget, requestTimeout: requestTimeout))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return channel
  }

  static let requestHeaders: HTTP2Frame.FramePayload = .headers(
    .init(headers: [":method": "POST", ":path": "/redress.v1.Intake/SubmitIncident", "content-type": "application/grpc"])
  )

  /// The `grpc-status` of a trailers-only answer the guard wrote, if it wrote one.
  static func refusal(_ channel: EmbeddedChannel) throws -> (status: String?, message: String?) {
    guard let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self), case .headers(let headers) = frame else {
      return (nil, nil)
    }
    #expect(headers.endStream)
    return (headers.headers.first(name: "grpc-status"), headers.headers.first(name: "grpc-message"))
  }

  @Test("a message still arriving counts against the server's budget; one that would pass it is answered RESOURCE_EXHAUSTED")
  func inboundBudget() throws {
    let budget = InboundBudget(serverLimit: 64 * 1024)
    let first = try Self.stream(budget, nil)
    let second = try Self.stream(budget, nil)
    try first.writeInbound(Self.requestHeaders)
    try first.writeInbound(Self.data(length: 50_000, payload: 40_000))
    #expect(budget.inUse == 40_005)

    try second.writeInbound(Self.requestHeaders)
    // Refused while it is read: the guard answers and closes the stream, so the write reports the closed channel.
    _ = try? second.writeInbound(Self.data(length: 30_000, payload: 30_000))
    let (status, message) = try Self.refusal(second)
    #expect(status == "\(RPCError.Code.resourceExhausted.rawValue)")
    #expect(message?.contains("maxBufferedInboundBytes") == true)
    #expect(!second.isActive, "the refused stream is closed")
    #expect(budget.inUse == 40_005, "nothing of the refused message is held")

    // The rest of the first message arrives: it is whole and handed on, and its octets are given back.
    try first.writeInbound(Self.more(10_000, endStream: true))
    #expect(budget.inUse == 0)
    _ = try first.finish()
  }

  @Test("whole messages of a client stream are released as they complete; a closed stream gives back the rest")
  func clientStreamReleases() throws {
    let budget = InboundBudget(serverLimit: 1024 * 1024)
    let channel = try Self.stream(budget, nil)
    try channel.writeInbound(Self.requestHeaders)
    // Two whole messages and the first 10 octets (prefix included) of a third, in one frame.
    var buffer = ByteBuffer()
    for _ in 0..<2 {
      buffer.writeInteger(UInt8(0))
      buffer.writeInteger(UInt32(100))
      buffer.writeRepeatingByte(0x42, count: 100)
    }
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(100))
    buffer.writeRepeatingByte(0x42, count: 5)
    try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(buffer))))
    #expect(budget.inUse == 10)
    _ = try channel.finish(acceptAlreadyClosed: true)
    #expect(budget.inUse == 0)
  }

  @Test("a request whose first message does not arrive in time is answered DEADLINE_EXCEEDED; one that arrives is not")
  func requestTimeout() throws {
    let budget = InboundBudget(serverLimit: 1024 * 1024)
    let stalled = try Self.stream(budget, .seconds(30))
    try stalled.writeInbound(Self.requestHeaders)
    try stalled.writeInbound(Self.data(length: 1000, payload: 10))
    stalled.embeddedEventLoop.advanceTime(by: .seconds(31))
    let (status, message) = try Self.refusal(stalled)
    #expect(status == "\(RPCError.Code.deadlineExceeded.rawValue)")
    #expect(message?.contains("request timeout") == true)
    #expect(budget.inUse == 0)

    let prompt = try Self.stream(budget, .seconds(30))
    try prompt.writeInbound(Self.requestHeaders)
    try prompt.writeInbound(Self.data(length: 10, payload: 10, endStream: true))
    prompt.embeddedEventLoop.advanceTime(by: .seconds(31))
    #expect(try Self.refusal(prompt).status == nil)
    #expect(prompt.isActive)
    _ = try prompt.finish()
  }

  @Test("grpc-message is percent-encoded as gRPC over HTTP/2 requires")
  func percentEncoding() {
    #expect(HTTP2RequestGuard.percentEncoded("50% of 8 MiB — full") == "50%25 of 8 MiB %E2%80%94 full")
  }

  @Test("the same server answers standard gRPC over HTTP/2 on its own port (authentication over it: tools/python-client)")
  func servesHTTP2() async throws {
    var logger = Logger(label: "http2-test")
    logger.logLevel = .critical
    let server = try RedressServer(
      config: .init(
        host: "127.0.0.1",
        port: 0,
        security: .plaintextForTestingOnly,
        grpcHTTP2: GRPCHTTP2Listener(host: "127.0.0.1", port: 0)
      ),
      services: [],
      directory: try IdentityDirectory(entries: []),
      rateLimiter: nil,
      logger: logger
    )
    let running = Task { try await server.run() }
    defer { running.cancel() }
    let port = try #require(try await server.grpcHTTP2Port)
    #expect(try await port != server.listeningAddress.port)

    let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    try await withGRPCClient(transport: transport) { client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let answer = try await health.check(.init())
      #expect(answer.status == .serving)
    }
  }
}
