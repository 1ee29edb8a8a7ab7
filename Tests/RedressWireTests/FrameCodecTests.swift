import GRPCCore
import NIOCore
import RedressWire
import Testing

@Suite("Frame codec")
struct FrameCodecTests {
  // MARK: - Round trips

  /// One frame of every type, with every flag and edge value the codec must carry.
  static let roundTripFrames: [Frame] = [
    .settings([]),
    .settings([Setting(.maxFrameSize, 16_777_215), Setting(SettingID(rawValue: 0x99), 7)]),
    .settingsAck,
    .headers(streamID: 1, path: "/grpc.testing.TestService/UnaryCall", metadata: [:], endStream: false),
    .headers(
      streamID: 0x7FFF_FFFF,
      path: "/redress.intake.v1.Intake/Submit",
      metadata: [("x-note", "héllo ✓"), ("x-note", ""), ("x-blob-bin", .binary([])), ("x-blob-bin", .binary([0, 255]))],
      endStream: true
    ),
    .headers(streamID: 3, path: "", metadata: ["x-served-by": "a1"], endStream: false),
    .message(streamID: 1, fragment: ByteBuffer(repeating: 0xAB, count: 16_384), flags: []),
    .message(streamID: 1, fragment: ByteBuffer(), flags: [.endMessage]),
    .message(streamID: 1, fragment: ByteBuffer(), flags: [.endStream]),
    .message(streamID: 9, fragment: ByteBuffer(string: "x"), flags: [.endMessage, .endStream, .compressed]),
    .trailers(streamID: 1, status: Status(code: .ok, message: ""), metadata: [:]),
    .trailers(
      streamID: 5,
      status: Status(code: .unauthenticated, message: "token expired ⏰"),
      metadata: ["grpc-status-details-bin": .binary([8, 16]), "retry-after": "3"]
    ),
    .resetStream(streamID: 3, code: .cancel),
    .resetStream(streamID: 3, code: WireErrorCode(rawValue: 0xDEAD)),
    .ping(data: 0, ack: false),
    .ping(data: .max, ack: true),
    .goAway(lastStreamID: 0x7FFF_FFFF, code: .enhanceYourCalm, debug: "too many pings"),
    .goAway(lastStreamID: 0, code: .noError, debug: ""),
    .windowUpdate(streamID: 0, increment: 0x7FFF_FFFF),
    .windowUpdate(streamID: 1, increment: 1),
  ]

  @Test("every frame type survives an encode-decode round trip", arguments: Self.roundTripFrames)
  func roundTrip(frame: Frame) throws {
    let harness = try FrameCodecHarness()
    let octets = try harness.encode(frame)
    #expect(octets.count == FrameEncoder.encodedLength(of: frame))
    #expect(try harness.decode(octets) == [.frame(frame)])
  }

  @Test("the round-trip frames cover every frame type")
  func roundTripCoversEveryType() {
    #expect(Set(Self.roundTripFrames.map(\.type)) == Set(FrameType.allCases))
  }

  @Test("the preface survives a round trip, and a frame after it decodes as a frame")
  func prefaceRoundTrip() throws {
    let harness = try FrameCodecHarness(expectingPreface: true)
    let elements: [FrameParser.Element] = [
      .preface(Preface(minimumVersion: 1, maximumVersion: 3)),
      .frame(.settings([Setting(.initialWindowSize, 1)])),
    ]
    let octets = try harness.encode(elements)
    #expect(octets.prefix(8) == [0x52, 0x44, 0x52, 0x53, 0x0D, 0x0A, 0x01, 0x03])
    #expect(try harness.decode(octets) == elements)
  }

  @Test("frames arriving one octet at a time decode to the same frames")
  func octetAtATime() throws {
    let encoder = try FrameCodecHarness()
    let elements: [FrameParser.Element] = [.preface(.clientDefault)] + Self.roundTripFrames.map { .frame($0) }
    let octets = try encoder.encode(elements)
    let decoder = try FrameCodecHarness(expectingPreface: true)
    #expect(try decoder.decode(octets, chunkSize: 1) == elements)
  }

  // MARK: - The examples of docs/PROTOCOL.md

  @Test("every hex block in PROTOCOL.md has an example here, and every example a block")
  func documentBlocksMatchExamples() throws {
    let document = try ProtocolDocument.load()
    #expect(Set(document.names) == Set(ProtocolExample.all.keys))
    #expect(document.names.count == Set(document.names).count)
  }

  @Test("encoding each PROTOCOL.md example gives exactly its hex, and its hex decodes back to it")
  func documentExamplesAreByteExact() throws {
    let document = try ProtocolDocument.load()
    for (name, example) in ProtocolExample.all.sorted(by: { $0.key < $1.key }) {
      guard let documented = document.blocks[name] else {
        Issue.record("docs/PROTOCOL.md has no hex block '\(name)'")
        continue
      }
      switch example {
      case .elements(let elements):
        let encoded = try FrameCodecHarness().encode(elements)
        #expect(Self.hex(encoded) == Self.hex(documented), "encoding of '\(name)' differs from PROTOCOL.md")
        let expectingPreface: Bool
        if case .preface = elements.first { expectingPreface = true } else { expectingPreface = false }
        let decoded = try FrameCodecHarness(expectingPreface: expectingPreface).decode(documented)
        #expect(decoded == elements, "decoding of '\(name)' differs from its example")
      case .metadataBlock(let metadata):
        var buffer = ByteBuffer()
        MetadataCodec.encode(metadata, into: &buffer)
        #expect(Self.hex(Array(buffer.readableBytesView)) == Self.hex(documented), "encoding of '\(name)' differs")
        var documentedBuffer = ByteBuffer(bytes: documented)
        #expect(try MetadataCodec.decode(&documentedBuffer, stream: 1) == metadata)
        #expect(documentedBuffer.readableBytes == 0)
      }
    }
  }

  @Test("the unary-call dump in PROTOCOL.md decodes into the expected frame sequence")
  func unaryCallDump() throws {
    let document = try ProtocolDocument.load()

    let clientOctets = try document.octets("unary-call-client-to-server")
    let fromClient = try FrameCodecHarness(expectingPreface: true).decode(clientOctets)
    #expect(fromClient == ProtocolExample.unaryCallClientToServer)

    let serverOctets = try document.octets("unary-call-server-to-client")
    let fromServer = try FrameCodecHarness(expectingPreface: true).decode(serverOctets)
    #expect(fromServer == ProtocolExample.unaryCallServerToClient)

    // Every octet belongs to an element: re-encoding the elements gives the dump back whole.
    #expect(try FrameCodecHarness().encode(fromClient) == clientOctets)
    #expect(try FrameCodecHarness().encode(fromServer) == serverOctets)

    // And the call is the one §16 describes.
    guard case .frame(.headers(1, let path, let metadata, false)) = fromClient[4] else {
      Issue.record("the fifth client element is not the request HEADERS: \(fromClient[4])")
      return
    }
    #expect(path == "/grpc.testing.TestService/UnaryCall")
    #expect(Array(metadata[stringValues: "grpc-timeout"]) == ["1S"])
    #expect(Array(metadata[binaryValues: "x-trace-bin"]) == [[0xDE, 0xAD, 0xBE, 0xEF]])
  }

  @Test("the settings and window our implementation sends by default are the ones PROTOCOL.md shows")
  func defaultSettingsMatchDocument() {
    let config = ConnectionConfig.defaults
    let sent = Frame.settings([
      Setting(.maxFrameSize, UInt32(config.maxFrameSize)),
      Setting(.maxConcurrentStreams, UInt32(config.maxConcurrentStreams)),
      Setting(.initialWindowSize, UInt32(config.streamWindowSize)),
      Setting(.maxMetadataSize, UInt32(config.maxMetadataSize)),
    ])
    #expect(sent == ProtocolExample.defaultSettings)
    let raise = Frame.windowUpdate(streamID: 0, increment: UInt32(config.connectionWindowSize - PeerSettings.initialConnectionWindowSize))
    #expect(raise == ProtocolExample.connectionWindowRaise)
  }

  // MARK: - Rejections: limits and header rules

  @Test("a frame longer than MAX_FRAME_SIZE is rejected from its header alone, before the payload arrives")
  func oversizedFrameRejectedFromHeader() throws {
    // Only the nine header octets are sent: the decoder must not wait for 16,385 more.
    let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 2, stream: 1, length: 16_385))
    #expect(error?.code == .frameSizeError)
    #expect(error?.scope == .connection)

    // The largest allowed frame is not rejected: it waits for its payload.
    #expect(try FrameCodecHarness().decode(RawFrame.octets(type: 2, stream: 1, length: 16_384)).isEmpty)

    // The limit is the receiver's own MAX_FRAME_SIZE.
    let larger = try FrameCodecHarness(maxFrameSize: 32_768)
    #expect(try larger.decode(RawFrame.octets(type: 2, stream: 1, length: 16_385)).isEmpty)
  }

  @Test("an unknown frame type closes the connection with PROTOCOL_ERROR", arguments: [UInt8(0x08), 0x42, 0xFF])
  func unknownType(type: UInt8) throws {
    let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: type, stream: 1))
    #expect(error?.code == .protocolError)
    #expect(error?.scope == .connection)
  }

  /// (type, stream, payload) that break the stream-0 rules with an otherwise valid payload.
  static let streamZeroViolations: [(UInt8, UInt32, [UInt8])] = [
    (0, 1, []),  // SETTINGS on a stream
    (5, 1, Array(repeating: 0, count: 8)),  // PING on a stream
    (6, 1, Array(repeating: 0, count: 8)),  // GOAWAY on a stream
    (1, 0, [0, 0, 0, 0]),  // HEADERS on stream 0
    (2, 0, []),  // MESSAGE on stream 0
    (3, 0, [0, 0, 0, 0, 0]),  // TRAILERS on stream 0
    (4, 0, [0, 0, 0, 8]),  // RST_STREAM on stream 0
  ]

  @Test("connection frames on a stream and stream frames on stream 0 close the connection with PROTOCOL_ERROR", arguments: Self.streamZeroViolations)
  func streamZeroRules(type: UInt8, stream: UInt32, payload: [UInt8]) throws {
    let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: type, stream: stream, payload: payload))
    #expect(error?.code == .protocolError)
    #expect(error?.scope == .connection)

    // The same frame on the right kind of stream is accepted.
    let allowed = try FrameCodecHarness().decode(RawFrame.octets(type: type, stream: stream == 0 ? 1 : 0, payload: payload))
    #expect(allowed.count == 1)
  }

  @Test("WINDOW_UPDATE is allowed on stream 0 and on a stream")
  func windowUpdateOnEitherStream() throws {
    let octets = RawFrame.octets(type: 7, stream: 0, payload: [0, 0, 0, 1]) + RawFrame.octets(type: 7, stream: 3, payload: [0, 0, 0, 2])
    #expect(try FrameCodecHarness().decode(octets) == [
      .frame(.windowUpdate(streamID: 0, increment: 1)), .frame(.windowUpdate(streamID: 3, increment: 2)),
    ])
  }

  /// (type, flags, stream, payload length) with a wrong fixed or minimum length.
  static let fixedLengthViolations: [(UInt8, UInt8, UInt32, Int)] = [
    (5, 0, 0, 7), (5, 0, 0, 9),  // PING must be 8
    (4, 0, 1, 3), (4, 0, 1, 5),  // RST_STREAM must be 4
    (7, 0, 0, 3), (7, 0, 1, 5),  // WINDOW_UPDATE must be 4
    (0, 0, 0, 5), (0, 0, 0, 7),  // SETTINGS must be a multiple of 6
    (0, 1, 0, 6),  // SETTINGS ACK must be empty
    (6, 0, 0, 7),  // GOAWAY needs 8
    (1, 0, 1, 3),  // HEADERS needs 4
    (3, 0, 1, 4),  // TRAILERS needs 5
  ]

  @Test("a frame of the wrong fixed or minimum length closes the connection with FRAME_SIZE_ERROR", arguments: Self.fixedLengthViolations)
  func fixedLengths(type: UInt8, flags: UInt8, stream: UInt32, length: Int) throws {
    let octets = RawFrame.octets(type: type, flags: flags, stream: stream, payload: Array(repeating: 1, count: length))
    let error = try FrameCodecHarness().rejection(of: octets)
    #expect(error?.code == .frameSizeError)
    #expect(error?.scope == .connection)
  }

  @Test("the reserved stream-id bit and undefined flag bits are ignored")
  func reservedBitsIgnored() throws {
    let octets = RawFrame.octets(type: 7, stream: 0x8000_0003, payload: [0, 0, 0, 9])
      + RawFrame.octets(type: 5, flags: 0xFE, stream: 0x8000_0000, payload: [0, 0, 0, 0, 0, 0, 0, 1])
      + RawFrame.octets(type: 1, flags: 0xFE, stream: 5, payload: [0, 0, 0, 0])
    #expect(try FrameCodecHarness().decode(octets) == [
      .frame(.windowUpdate(streamID: 3, increment: 9)),
      .frame(.ping(data: 1, ack: false)),
      .frame(.headers(streamID: 5, path: "", metadata: [:], endStream: false)),
    ])
  }

  // MARK: - Rejections: payloads

  @Test("a zero WINDOW_UPDATE is a stream PROTOCOL_ERROR on a stream and a connection one on stream 0")
  func zeroWindowUpdate() throws {
    let onStream = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 7, stream: 3, payload: [0, 0, 0, 0]))
    #expect(onStream?.code == .protocolError)
    #expect(onStream?.scope == .stream(3))

    // Only the reserved bit set is still an increment of zero.
    let onConnection = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 7, stream: 0, payload: [0x80, 0, 0, 0]))
    #expect(onConnection?.code == .protocolError)
    #expect(onConnection?.scope == .connection)
  }

  /// Metadata entry kinds (§6).
  static let text = UInt8(0)
  static let binary = UInt8(1)

  /// Metadata blocks that break §6, each a stream PROTOCOL_ERROR.
  static let malformedMetadata: [(String, [UInt8])] = [
    ("count says more entries than there are", RawFrame.metadataBlock(count: 2, RawFrame.metadataEntry(kind: text, key: "a", value: [0x61]))),
    (
      "count says fewer entries than there are",
      RawFrame.metadataBlock(
        count: 1,
        RawFrame.metadataEntry(kind: text, key: "a", value: [0x61]),
        RawFrame.metadataEntry(kind: text, key: "b", value: [0x62])
      )
    ),
    ("value length runs past the block", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: "a", value: [0x61], valueLength: 100))),
    ("key length runs past the block", RawFrame.metadataBlock(count: 1, [text, 50, 0x61])),
    ("missing count", [0x00]),
    ("text value is not UTF-8", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: "x-note", value: [0xFF, 0xFE]))),
    ("binary value under a key without -bin", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: binary, key: "x-trace", value: [1]))),
    ("text value under a -bin key", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: "x-trace-bin", value: [0x61]))),
    ("unknown kind", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: 2, key: "x-note", value: [0x61]))),
    ("uppercase key", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: "X-Note", value: [0x61]))),
    ("empty key", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: "", value: [0x61]))),
    ("key with a colon", RawFrame.metadataBlock(count: 1, RawFrame.metadataEntry(kind: text, key: ":path", value: [0x61]))),
  ]

  @Test("malformed metadata in HEADERS is a stream PROTOCOL_ERROR", arguments: Self.malformedMetadata)
  func malformedHeadersMetadata(problem: String, block: [UInt8]) throws {
    let octets = RawFrame.octets(type: 1, stream: 5, payload: RawFrame.headersPayload(metadataBlock: block))
    let error = try FrameCodecHarness().rejection(of: octets)
    #expect(error?.code == .protocolError, "\(problem)")
    #expect(error?.scope == .stream(5), "\(problem)")
  }

  @Test("malformed metadata in TRAILERS is a stream PROTOCOL_ERROR", arguments: Self.malformedMetadata)
  func malformedTrailersMetadata(problem: String, block: [UInt8]) throws {
    // Status 0 and a one-octet message, so even a one-octet block meets TRAILERS' minimum length.
    let octets = RawFrame.octets(type: 3, stream: 7, payload: [0, 0, 1, 0x78] + block)
    let error = try FrameCodecHarness().rejection(of: octets)
    #expect(error?.code == .protocolError, "\(problem)")
    #expect(error?.scope == .stream(7), "\(problem)")
  }

  @Test("well-formed metadata with every key character decodes")
  func wellFormedMetadata() throws {
    let block = RawFrame.metadataBlock(
      count: 2,
      RawFrame.metadataEntry(kind: Self.text, key: "az09-_.", value: Array("✓".utf8)),
      RawFrame.metadataEntry(kind: Self.binary, key: "x-bin", value: [0xFF, 0xFE])
    )
    let octets = RawFrame.octets(type: 1, stream: 5, payload: RawFrame.headersPayload(metadataBlock: block))
    #expect(try FrameCodecHarness().decode(octets) == [
      .frame(
        .headers(
          streamID: 5,
          path: "/grpc.testing.TestService/UnaryCall",
          metadata: ["az09-_.": "✓", "x-bin": .binary([0xFF, 0xFE])],
          endStream: false
        )
      )
    ])
  }

  @Test("metadata over MAX_METADATA_SIZE is a stream METADATA_TOO_LARGE")
  func metadataTooLarge() throws {
    let entry = RawFrame.metadataEntry(kind: Self.text, key: "x-note", value: Array(repeating: 0x61, count: 20))
    let block = RawFrame.metadataBlock(count: 1, entry)  // 2 + 32 = 34 octets
    #expect(block.count == 34)

    let headers = RawFrame.octets(type: 1, stream: 9, payload: RawFrame.headersPayload(metadataBlock: block))
    let headersError = try FrameCodecHarness(maxMetadataSize: 33).rejection(of: headers)
    #expect(headersError?.code == .metadataTooLarge)
    #expect(headersError?.scope == .stream(9))
    // At the limit it is accepted.
    #expect(try FrameCodecHarness(maxMetadataSize: 34).decode(headers).count == 1)

    // For TRAILERS the status message counts too: 4 + 34 octets.
    let trailers = RawFrame.octets(type: 3, stream: 11, payload: [13, 0, 4] + Array("oops".utf8) + block)
    let trailersError = try FrameCodecHarness(maxMetadataSize: 37).rejection(of: trailers)
    #expect(trailersError?.code == .metadataTooLarge)
    #expect(trailersError?.scope == .stream(11))
    #expect(try FrameCodecHarness(maxMetadataSize: 38).decode(trailers).count == 1)
  }

  @Test(
    "a request path that is not UTF-8 or not /service/method is a stream PROTOCOL_ERROR",
    arguments: [
      Array("grpc.testing.TestService/UnaryCall".utf8), Array("/grpc.testing.TestService".utf8), Array("/a/b/c".utf8),
      Array("//UnaryCall".utf8), Array("/grpc.testing.TestService/".utf8), Array("/".utf8), [0x2F, 0xFF, 0x2F, 0x61],
    ]
  )
  func badPath(path: [UInt8]) throws {
    let payload = RawFrame.u16(path.count) + path + [0, 0]
    let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 1, stream: 3, payload: payload))
    #expect(error?.code == .protocolError)
    #expect(error?.scope == .stream(3))
  }

  @Test("a path length that runs past the HEADERS frame is a stream PROTOCOL_ERROR")
  func pathRunsPastFrame() throws {
    let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 1, stream: 3, payload: [0, 9, 0x2F, 0x61, 0, 0]))
    #expect(error?.code == .protocolError)
    #expect(error?.scope == .stream(3))
  }

  @Test("TRAILERS with a status above 16, a non-UTF-8 message or a message running past the frame is a stream PROTOCOL_ERROR")
  func badTrailers() throws {
    for payload: [UInt8] in [[17, 0, 0, 0, 0], [2, 0, 2, 0xC3, 0x28, 0, 0], [2, 0, 9, 0x61, 0, 0]] {
      let error = try FrameCodecHarness().rejection(of: RawFrame.octets(type: 3, stream: 1, payload: payload))
      #expect(error?.code == .protocolError, "payload \(payload)")
      #expect(error?.scope == .stream(1), "payload \(payload)")
    }
    // Status 16 is the last valid code.
    let valid = try FrameCodecHarness().decode(RawFrame.octets(type: 3, stream: 1, payload: [16, 0, 0, 0, 0]))
    #expect(valid == [.frame(.trailers(streamID: 1, status: Status(code: .unauthenticated, message: ""), metadata: [:]))])
  }

  @Test("a stream error consumes its frame, so the next frame still parses")
  func streamErrorLeavesConnectionUsable() throws {
    var parser = FrameParser(expectingPreface: false)
    let bad = RawFrame.octets(type: 1, stream: 1, payload: RawFrame.headersPayload(metadataBlock: [0, 1]))
    let ping = RawFrame.octets(type: 5, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 42])
    parser.append(ByteBuffer(bytes: bad + ping))
    #expect(throws: WireError.self) { try parser.next() }
    #expect(try parser.next() == .frame(.ping(data: 42, ack: false)))
    #expect(parser.bufferedBytes == 0)
  }

  // MARK: - Rejections: preface

  @Test(
    "a bad preface closes the connection with PROTOCOL_ERROR",
    arguments: [
      Array("RDRX\r\n".utf8) + [1, 1],  // wrong magic, all eight octets
      Array("RDX".utf8),  // wrong magic, detected before eight octets arrive
      Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8),  // an HTTP/2 client
      Array("GET / HTTP/1.1\r\n\r\n".utf8),  // an HTTP/1 client
      RawFrame.octets(type: 0, stream: 0, payload: []),  // frames without a preface
    ]
  )
  func badPreface(octets: [UInt8]) throws {
    let error = try FrameCodecHarness(expectingPreface: true).rejection(of: octets)
    #expect(error?.code == .protocolError)
    #expect(error?.scope == .connection)
  }

  @Test("a GOAWAY in place of the preface is read as the server refusing the connection")
  func goAwayInsteadOfPreface() throws {
    let harness = try FrameCodecHarness(expectingPreface: true)
    let refusal = Frame.goAway(lastStreamID: 0, code: .versionUnsupported, debug: "server speaks versions 1...1")
    #expect(try harness.decode(try FrameCodecHarness().encode(refusal), chunkSize: 3) == [.frame(refusal)])
  }

  // MARK: - Encoder limits

  @Test("GOAWAY debug text and status messages are cut on a character boundary")
  func textIsCutOnCharacterBoundary() throws {
    let debug = String(repeating: "a", count: 1_023) + "é"  // é is two octets: 1,025 in all
    let goAway = try FrameCodecHarness().encode(.goAway(lastStreamID: 0, code: .noError, debug: debug))
    #expect(goAway.count == 9 + 8 + 1_023)
    #expect(try FrameCodecHarness().decode(goAway) == [
      .frame(.goAway(lastStreamID: 0, code: .noError, debug: String(repeating: "a", count: 1_023)))
    ])

    let message = String(repeating: "b", count: 4_095) + "é"
    let trailers = Frame.trailers(streamID: 1, status: Status(code: .internalError, message: message), metadata: [:])
    let decoded = try FrameCodecHarness(maxMetadataSize: 8_192).decode(try FrameCodecHarness().encode(trailers))
    #expect(decoded == [
      .frame(.trailers(streamID: 1, status: Status(code: .internalError, message: String(repeating: "b", count: 4_095)), metadata: [:]))
    ])
  }

  @Test("metadata keys are sent lowercase and -bin values always as binary")
  func encoderNormalisesMetadata() throws {
    let frame = Frame.headers(streamID: 1, path: "", metadata: ["X-Note": "a", "x-text-bin": "raw"], endStream: false)
    #expect(try FrameCodecHarness().decode(try FrameCodecHarness().encode(frame)) == [
      .frame(.headers(streamID: 1, path: "", metadata: ["x-note": "a", "x-text-bin": .binary(Array("raw".utf8))], endStream: false))
    ])
  }

  // MARK: - Settings

  /// (setting, value, expected code) for values outside the bounds of §5.
  static let outOfBoundsSettings: [(UInt16, UInt32, WireErrorCode)] = [
    (0x1, 16_383, .protocolError),
    (0x1, 16_777_216, .protocolError),
    (0x2, 0x8000_0000, .protocolError),
    (0x3, 0x8000_0000, .flowControlError),
    (0x4, 16_777_216, .protocolError),
  ]

  @Test("a setting outside its bounds closes the connection with the documented code", arguments: Self.outOfBoundsSettings)
  func settingOutOfBounds(id: UInt16, value: UInt32, code: WireErrorCode) {
    var settings = PeerSettings()
    let error = #expect(throws: WireError.self) {
      try settings.apply([Setting(SettingID(rawValue: id), value)])
    }
    #expect(error?.code == code)
    #expect(error?.scope == .connection)
  }

  @Test("settings at their bounds apply, unknown ones are ignored, and absent ones keep the defaults")
  func settingsWithinBounds() throws {
    var settings = PeerSettings()
    #expect(settings.maxFrameSize == 16_384 && settings.maxConcurrentStreams == 100)
    #expect(settings.initialWindowSize == 65_535 && settings.maxMetadataSize == 16_384)
    try settings.apply([
      Setting(.maxFrameSize, 16_777_215),
      Setting(.initialWindowSize, 0x7FFF_FFFF),
      Setting(SettingID(rawValue: 0x99), 0xFFFF_FFFF),
      Setting(.maxMetadataSize, 0),
    ])
    #expect(settings.maxFrameSize == 16_777_215)
    #expect(settings.initialWindowSize == 0x7FFF_FFFF)
    #expect(settings.maxMetadataSize == 0)
    #expect(settings.maxConcurrentStreams == 100)
  }

  // MARK: - Helpers

  static func hex(_ octets: [UInt8]) -> String {
    octets.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
      .joined(separator: " ")
  }
}
