import GRPCCore
import NIOCore
import RedressWire
import Testing
import RedressTestSupport

/// The catalogue of malformed inputs (docs/.design-notes.md, "Errors"): each is sent on a raw TLS
/// socket and must get its documented answer, while a real client on another connection to the
/// same server goes on making RPCs on that same connection, and the server goes on accepting new
/// ones.
@Suite("Malformed input on the wire")
struct MalformedInputTests {
  @Test(
    "each malformed input gets its documented answer while other connections carry on",
    arguments: MalformedInput.catalogue
  )
  func documentedAnswer(_ input: MalformedInput) async throws {
    try await withWireServer(
      services: [InteropTestService()],
      interceptors: [PeerEchoInterceptor()],
      configure: { input.configure(&$0.connection) }
    ) { server in
      try await server.withClient { client in
        let healthy = HealthyClient(stub: Grpc_Testing_TestService.Client(wrapping: client))
        let peerBefore = try await healthy.call()
        #expect(peerBefore.hasPrefix("ipv4:127.0.0.1:"), "the server echoed no client address: '\(peerBefore)'")

        try await RawWireClient.withConnection(port: server.port) { raw in
          if input.handshake { try await raw.handshake() }
          try await input.send(raw)
          try await Self.expect(input.answer, from: raw, after: input)
        }

        // The same healthy connection still works: the server saw the same client address.
        let peerAfter = try await healthy.call()
        #expect(peerAfter == peerBefore, "the healthy client had to reconnect: its connection was dropped")
        // And the server still accepts and serves new connections.
        try await RawWireClient.withConnection(port: server.port) { fresh in
          try await fresh.handshake()
          let answer = try await fresh.emptyCall(stream: 1)
          #expect(answer.types == [.headers, .message, .trailers])
          #expect(answer.status?.code == .ok)
        }
      }
    }
  }

  private static func expect(_ answer: MalformedInput.Answer, from raw: RawWireClient, after input: MalformedInput) async throws {
    switch answer {
    case .refusal(let code, let mention):
      let goAway = try await raw.waitForGoAway()
      #expect(goAway.code == code)
      #expect(goAway.lastStreamID == 0)
      #expect(goAway.preceding.isEmpty, "the server sent \(goAway.preceding) before refusing the preface")
      #expect(!goAway.debug.isEmpty, "GOAWAY carries no debug text saying what was wrong")
      if let mention {
        #expect(goAway.debug.contains(mention), "debug text '\(goAway.debug)' does not mention '\(mention)'")
      }
      let after = try await raw.waitForClose()
      #expect(after.isEmpty, "the server sent \(after) after its GOAWAY")

    case .goAway(let code, let lastStreamID):
      let goAway = try await raw.waitForGoAway()
      #expect(goAway.code == code, "GOAWAY debug: '\(goAway.debug)'")
      #expect(goAway.lastStreamID == lastStreamID)
      #expect(!goAway.debug.isEmpty, "GOAWAY carries no debug text saying what was wrong")
      try await raw.waitForClose()

    case .reset(let stream, let code):
      let received = try await raw.waitForReset(stream: stream)
      #expect(received == code)
      try await input.afterReset(raw)
      // The connection goes on: a fresh, valid stream on it is answered in full.
      let answer = try await raw.emptyCall(stream: MalformedInput.freshStream)
      #expect(answer.types == [.headers, .message, .trailers])
      #expect(answer.status?.code == .ok)

    case .close:
      try await raw.waitForClose()
    }
  }
}

/// One malformed input and the answer the design notes give for it.
struct MalformedInput: Sendable, CustomTestStringConvertible {
  /// What the server must do.
  enum Answer: Sendable, CustomStringConvertible {
    /// `GOAWAY(0, code)` with no server preface before it, then close; the debug text mentions
    /// the given text if any.
    case refusal(WireErrorCode, mentioning: String? = nil)
    /// `GOAWAY(lastStreamID, code)`, then close.
    case goAway(WireErrorCode, lastStreamID: UInt32 = 0)
    /// `RST_STREAM(code)` on `stream`; the connection stays usable.
    case reset(stream: UInt32, WireErrorCode)
    /// The connection closes (and the server survives).
    case close

    var description: String {
      switch self {
      case .refusal(let code, _): "GOAWAY \(code), no preface"
      case .goAway(let code, let last): "GOAWAY \(code) (last stream \(last))"
      case .reset(let stream, let code): "RST_STREAM \(code) on stream \(stream)"
      case .close: "connection closes"
      }
    }
  }

  /// The stream a valid call uses after a stream error; above every id the catalogue uses.
  static let freshStream: UInt32 = 101

  var name: String
  var answer: Answer
  /// Whether the raw client completes the preface and SETTINGS exchange before `send`.
  var handshake = true
  /// Server connection limits for this case.
  var configure: @Sendable (inout ConnectionConfig) -> Void = { _ in }
  /// Sends the malformed input.
  var send: @Sendable (RawWireClient) async throws -> Void
  /// Runs after an expected `RST_STREAM`, before the fresh stream (e.g. to free a stream slot).
  var afterReset: @Sendable (RawWireClient) async throws -> Void = { _ in }

  var testDescription: String { "\(self.name) → \(self.answer)" }
}

extension MalformedInput {
  typealias Raw = RawWireClient
  static let path = RawWireClient.emptyCallPath

  /// `HEADERS` opening `stream` for EmptyCall with no metadata; the server then waits for the request.
  static func open(_ stream: UInt32, path: String = Self.path) -> Frame {
    .headers(streamID: stream, path: path, metadata: [:], endStream: false)
  }

  /// A `HEADERS` frame for EmptyCall on `stream` whose metadata block is `block` as given.
  static func headers(stream: UInt32, path: String = Self.path, block: [UInt8]) -> [UInt8] {
    Raw.frame(type: FrameType.headers.rawValue, stream: stream, payload: Raw.u16(path.utf8.count) + Array(path.utf8) + block)
  }

  /// A metadata entry; kind 0 is text, 1 binary; `valueLength` may lie.
  static func entry(kind: UInt8 = 0, key: String, value: [UInt8], valueLength: Int? = nil) -> [UInt8] {
    [kind, UInt8(key.utf8.count)] + Array(key.utf8) + Raw.u32(UInt32(valueLength ?? value.count)) + value
  }

  static let catalogue: [MalformedInput] = [
    // The preface.
    MalformedInput(name: "an HTTP/1.1 request instead of the preface", answer: .refusal(.protocolError), handshake: false) { raw in
      try await raw.send(Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
    },
    MalformedInput(name: "the HTTP/2 client preface instead of ours", answer: .refusal(.protocolError), handshake: false) { raw in
      try await raw.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
    },
    MalformedInput(name: "a preface with the magic one octet off", answer: .refusal(.protocolError), handshake: false) { raw in
      try await raw.send(Array("RDRX\r\n".utf8) + [1, 1])
    },
    MalformedInput(
      name: "a preface offering only versions 2...3",
      answer: .refusal(.versionUnsupported, mentioning: "1...1"),
      handshake: false
    ) { raw in
      try await raw.send(Array("RDRS\r\n".utf8) + [2, 3])
    },
    MalformedInput(
      name: "nothing at all within the handshake timeout of 2 s",
      answer: .refusal(.handshakeTimeout),
      handshake: false,
      // Long enough that a TLS handshake on a loaded machine finishes well inside it.
      configure: { $0.handshakeTimeout = .seconds(2) }
    ) { _ in },

    // SETTINGS.
    MalformedInput(name: "PING as the first frame instead of SETTINGS", answer: .goAway(.protocolError), handshake: false) { raw in
      var buffer = ByteBuffer()
      Preface.clientDefault.encode(into: &buffer)
      FrameEncoder.encode(.ping(data: 1, ack: false), into: &buffer)
      try await raw.send(buffer)
    },
    MalformedInput(name: "a SETTINGS with MAX_FRAME_SIZE 1024, under the minimum", answer: .goAway(.protocolError), handshake: false) { raw in
      var buffer = ByteBuffer()
      Preface.clientDefault.encode(into: &buffer)
      FrameEncoder.encode(.settings([Setting(.maxFrameSize, 1024)]), into: &buffer)
      try await raw.send(buffer)
    },
    MalformedInput(name: "a SETTINGS with INITIAL_WINDOW_SIZE 2^31", answer: .goAway(.flowControlError), handshake: false) { raw in
      var buffer = ByteBuffer()
      Preface.clientDefault.encode(into: &buffer)
      FrameEncoder.encode(.settings([Setting(.initialWindowSize, 0x8000_0000)]), into: &buffer)
      try await raw.send(buffer)
    },
    MalformedInput(name: "a second SETTINGS", answer: .goAway(.protocolError)) { raw in
      try await raw.send(.settings([]))
    },

    // Frame headers and fixed lengths.
    MalformedInput(name: "a frame header cut short, then the end of input", answer: .close) { raw in
      try await raw.send([0x00, 0x00, 0x08, FrameType.ping.rawValue, 0x00])
      try await raw.closeOutput()
    },
    MalformedInput(name: "an unknown frame type 0x0A", answer: .goAway(.protocolError)) { raw in
      try await raw.send(Raw.frame(type: 0x0A, stream: 0, payload: [0, 0, 0, 0]))
    },
    MalformedInput(
      name: "only the header of a MESSAGE announcing 16,777,215 octets (over MAX_FRAME_SIZE)",
      answer: .goAway(.frameSizeError)
    ) { raw in
      // No payload follows: the answer proves the limit is checked from the header alone.
      try await raw.send(Raw.frame(type: FrameType.message.rawValue, stream: 1, length: 16_777_215))
    },
    MalformedInput(name: "only the header of a HEADERS announcing 16,385 octets", answer: .goAway(.frameSizeError)) { raw in
      try await raw.send(Raw.frame(type: FrameType.headers.rawValue, stream: 1, length: 16_385))
    },
    MalformedInput(name: "a PING with a 4-octet payload", answer: .goAway(.frameSizeError)) { raw in
      try await raw.send(Raw.frame(type: FrameType.ping.rawValue, stream: 0, payload: [1, 2, 3, 4]))
    },
    MalformedInput(name: "a WINDOW_UPDATE with a 3-octet payload", answer: .goAway(.frameSizeError)) { raw in
      try await raw.send(Raw.frame(type: FrameType.windowUpdate.rawValue, stream: 0, payload: [0, 0, 1]))
    },

    // Frames on the wrong stream.
    MalformedInput(name: "HEADERS on stream 0", answer: .goAway(.protocolError)) { raw in
      try await raw.send(Self.open(0))
    },
    MalformedInput(name: "MESSAGE on stream 0", answer: .goAway(.protocolError)) { raw in
      try await raw.send(.message(streamID: 0, fragment: ByteBuffer(), flags: .endMessage))
    },
    MalformedInput(name: "PING on stream 1", answer: .goAway(.protocolError)) { raw in
      try await raw.send(Raw.frame(type: FrameType.ping.rawValue, stream: 1, payload: [UInt8](repeating: 0, count: 8)))
    },

    // Stream states and ids.
    MalformedInput(name: "MESSAGE before HEADERS on idle stream 1", answer: .goAway(.protocolError)) { raw in
      try await raw.send(.message(streamID: 1, fragment: ByteBuffer(), flags: [.endMessage, .endStream]))
    },
    MalformedInput(name: "RST_STREAM on idle stream 1", answer: .goAway(.protocolError)) { raw in
      try await raw.send(.resetStream(streamID: 1, code: .cancel))
    },
    MalformedInput(name: "WINDOW_UPDATE on idle stream 1", answer: .goAway(.protocolError)) { raw in
      try await raw.send(.windowUpdate(streamID: 1, increment: 1024))
    },
    MalformedInput(
      name: "MESSAGE on stream 1 after the client reset it",
      answer: .reset(stream: 1, .streamClosed)
    ) { raw in
      try await raw.send(
        Self.open(1),
        .resetStream(streamID: 1, code: .cancel),
        .message(streamID: 1, fragment: ByteBuffer(), flags: [.endMessage, .endStream])
      )
    },
    MalformedInput(name: "HEADERS reusing stream 1 after it completed", answer: .goAway(.protocolError, lastStreamID: 1)) { raw in
      let first = try await raw.emptyCall(stream: 1)
      #expect(first.status?.code == .ok)
      try await raw.send(Self.open(1))
    },
    MalformedInput(name: "HEADERS on stream 3 after stream 5 (a decreasing id)", answer: .goAway(.protocolError, lastStreamID: 5)) { raw in
      let first = try await raw.emptyCall(stream: 5)
      #expect(first.status?.code == .ok)
      try await raw.send(Self.open(3))
    },
    MalformedInput(name: "HEADERS on even stream 2", answer: .goAway(.protocolError)) { raw in
      try await raw.send(Self.open(2))
    },
    MalformedInput(name: "a second HEADERS on open stream 1", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.open(1), Self.open(1))
    },
    MalformedInput(name: "TRAILERS sent by the client", answer: .goAway(.protocolError, lastStreamID: 1)) { raw in
      try await raw.send(Self.open(1), .trailers(streamID: 1, status: Status(code: .ok, message: ""), metadata: [:]))
    },

    // HEADERS payloads: stream errors.
    MalformedInput(name: "a metadata count of 2 with one entry", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(2) + Self.entry(key: "x-a", value: Array("b".utf8))))
    },
    MalformedInput(name: "a metadata value length running past the block", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(1) + Self.entry(key: "x-a", value: Array("b".utf8), valueLength: 900)))
    },
    MalformedInput(name: "a text metadata value that is not UTF-8", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(1) + Self.entry(key: "x-note", value: [0x61, 0xC3, 0x28])))
    },
    MalformedInput(name: "a metadata key with an upper-case letter", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(1) + Self.entry(key: "X-Note", value: Array("b".utf8))))
    },
    MalformedInput(name: "a binary metadata value under a key not ending in -bin", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(1) + Self.entry(kind: 1, key: "x-note", value: [0, 1, 2])))
    },
    MalformedInput(name: "a path that is not /service/method", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.headers(stream: 1, path: "/grpc.testing.TestService", block: Raw.u16(0)))
    },
    MalformedInput(
      name: "a metadata block of 2,000 octets over MAX_METADATA_SIZE 1,024",
      answer: .reset(stream: 1, .metadataTooLarge),
      // With the default limits (16 KiB frames and 16 KiB metadata) a HEADERS frame cannot
      // carry a block over the metadata limit, so the server's limit is lowered.
      configure: { $0.maxMetadataSize = 1024 }
    ) { raw in
      try await raw.send(Self.headers(stream: 1, block: Raw.u16(1) + Self.entry(key: "x-big", value: [UInt8](repeating: 0x61, count: 2000))))
    },

    // MESSAGE payloads.
    MalformedInput(
      name: "a COMPRESSED MESSAGE with no grpc-encoding negotiated",
      answer: .reset(stream: 1, .internalError)
    ) { raw in
      try await raw.send(Self.open(1), .message(streamID: 1, fragment: ByteBuffer(), flags: [.endMessage, .compressed, .endStream]))
    },

    // Flow control.
    MalformedInput(name: "WINDOW_UPDATE 0 on stream 0", answer: .goAway(.protocolError)) { raw in
      try await raw.send(Raw.frame(type: FrameType.windowUpdate.rawValue, stream: 0, payload: Raw.u32(0)))
    },
    MalformedInput(name: "WINDOW_UPDATE 0 on open stream 1", answer: .reset(stream: 1, .protocolError)) { raw in
      try await raw.send(Self.open(1))
      try await raw.send(Raw.frame(type: FrameType.windowUpdate.rawValue, stream: 1, payload: Raw.u32(0)))
    },
    MalformedInput(name: "WINDOW_UPDATE overflowing the connection window past 2^31-1", answer: .goAway(.flowControlError)) { raw in
      try await raw.send(.windowUpdate(streamID: 0, increment: 0x7FFF_FFFF))
    },
    MalformedInput(name: "WINDOW_UPDATE overflowing stream 1's window past 2^31-1", answer: .reset(stream: 1, .flowControlError)) { raw in
      try await raw.send(Self.open(1), .windowUpdate(streamID: 1, increment: 0x7FFF_FFFF))
    },
    MalformedInput(
      name: "a 2,048-octet MESSAGE on a stream whose window is 1,024",
      answer: .goAway(.flowControlError, lastStreamID: 1),
      configure: { $0.streamWindowSize = 1024 }
    ) { raw in
      try await raw.send(Self.open(1), .message(streamID: 1, fragment: ByteBuffer(repeating: 0, count: 2048), flags: .endMessage))
    },
    MalformedInput(
      name: "a 100,000-octet MESSAGE past the connection window of 65,535",
      answer: .goAway(.flowControlError, lastStreamID: 1),
      // Frames of 16 KiB can never overrun a window that is credited back at half, so the
      // server accepts larger frames and keeps the initial connection window.
      configure: {
        $0.maxFrameSize = 131_072
        $0.connectionWindowSize = 65_535
      }
    ) { raw in
      try await raw.send(Self.open(1), .message(streamID: 1, fragment: ByteBuffer(repeating: 0, count: 100_000), flags: .endMessage))
    },

    // Limits and floods.
    MalformedInput(
      name: "a fifth stream over MAX_CONCURRENT_STREAMS 4",
      answer: .reset(stream: 9, .refusedStream),
      configure: { $0.maxConcurrentStreams = 4 }
    ) { raw in
      try await raw.send([1, 3, 5, 7, 9].map { Self.open($0) })
    } afterReset: { raw in
      // Free a slot so the fresh stream is not refused too.
      try await raw.send(.resetStream(streamID: 1, code: .cancel))
    },
    MalformedInput(
      name: "a reset flood: 21 HEADERS + RST_STREAM pairs, limit 20 per 10 s",
      answer: .goAway(.enhanceYourCalm, lastStreamID: 41),
      configure: { $0.resetRateLimit = .init(maxEvents: 20, per: .seconds(10)) }
    ) { raw in
      let ids: [UInt32] = (0..<21).map { 1 + 2 * $0 }
      try await raw.send(ids.flatMap { [Self.open($0), Frame.resetStream(streamID: $0, code: .cancel)] })
    },
    MalformedInput(
      name: "a ping flood: 11 PINGs, limit 10 per 10 s",
      answer: .goAway(.enhanceYourCalm),
      configure: { $0.pingRateLimit = .init(maxEvents: 10, per: .seconds(10)) }
    ) { raw in
      try await raw.send((0..<11).map { Frame.ping(data: UInt64($0), ack: false) })
    },
  ]
}

/// Adds the client address the server saw to every response, so a test can tell whether two
/// RPCs travelled on the same connection.
struct PeerEchoInterceptor: ServerInterceptor {
  static let key = "x-redress-test-peer"

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    var response = try await next(request, context)
    response.metadata.addString(context.remotePeer, forKey: Self.key)
    return response
  }
}

/// A real client on its own connection, making RPCs around each malformed input.
private struct HealthyClient: Sendable {
  let stub: Grpc_Testing_TestService.Client<WireClientTransport>

  /// Makes an EmptyCall and returns the client address the server saw.
  func call() async throws -> String {
    let stub = self.stub
    return try await withTimeout(.seconds(5), "an RPC on the healthy connection") {
      try await stub.emptyCall(Grpc_Testing_Empty()) { response in
        _ = try response.message
        return response.metadata[stringValues: PeerEchoInterceptor.key].first(where: { _ in true }) ?? "no peer echoed"
      }
    }
  }
}
