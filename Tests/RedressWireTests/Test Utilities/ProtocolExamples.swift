import GRPCCore
import NIOCore
import RedressWire

/// What each named hex block of docs/PROTOCOL.md encodes, as codec values.
enum ProtocolExample: Sendable {
  /// A preface and frames, in wire order.
  case elements([FrameParser.Element])
  /// A bare metadata block (§6).
  case metadataBlock(Metadata)

  /// Every named block of the document; a block missing here, or an entry missing there, fails.
  static let all: [String: ProtocolExample] = [
    "preface": .elements([.preface(.clientDefault)]),
    "preface-offering-1-to-3": .elements([.preface(Preface(minimumVersion: 1, maximumVersion: 3))]),
    "goaway-version-unsupported": .elements([
      .frame(.goAway(lastStreamID: 0, code: .versionUnsupported, debug: "server speaks versions 1...1"))
    ]),
    "settings-frame": .elements([.frame(Self.defaultSettings)]),
    "settings-ack-frame": .elements([.frame(.settingsAck)]),
    "headers-request-frame": .elements([.frame(Self.unaryRequestHeaders)]),
    "headers-end-stream-frame": .elements([
      .frame(.headers(streamID: 7, path: "/grpc.testing.TestService/EmptyCall", metadata: [:], endStream: true))
    ]),
    "headers-response-frame": .elements([
      .frame(.headers(streamID: 1, path: "", metadata: ["x-served-by": "a1"], endStream: false))
    ]),
    "message-fragment-frame": .elements([
      .frame(.message(streamID: 5, fragment: ByteBuffer(string: "hello, "), flags: []))
    ]),
    "message-end-frame": .elements([
      .frame(.message(streamID: 5, fragment: ByteBuffer(string: "world"), flags: .endMessage))
    ]),
    "message-empty-frame": .elements([.frame(.message(streamID: 5, fragment: ByteBuffer(), flags: .endMessage))]),
    "message-half-close-frame": .elements([.frame(.message(streamID: 5, fragment: ByteBuffer(), flags: .endStream))]),
    "trailers-ok-frame": .elements([.frame(Self.okTrailers)]),
    "trailers-frame": .elements([
      .frame(
        .trailers(
          streamID: 3,
          status: Status(code: .notFound, message: "no such incident"),
          metadata: ["grpc-status-details-bin": .binary([0x08, 0x05])]
        )
      )
    ]),
    "rst-stream-frame": .elements([.frame(.resetStream(streamID: 3, code: .cancel))]),
    "ping-frame": .elements([.frame(.ping(data: 0x0102_0304_0506_0708, ack: false))]),
    "ping-ack-frame": .elements([.frame(.ping(data: 0x0102_0304_0506_0708, ack: true))]),
    "goaway-frame": .elements([.frame(.goAway(lastStreamID: 5, code: .noError, debug: "shutting down"))]),
    "window-update-frame": .elements([.frame(.windowUpdate(streamID: 1, increment: 524_288))]),
    "window-update-connection-frame": .elements([.frame(Self.connectionWindowRaise)]),
    "metadata-block": .metadataBlock(Self.unaryRequestMetadata),
    "unary-call-client-to-server": .elements(Self.unaryCallClientToServer),
    "unary-call-server-to-client": .elements(Self.unaryCallServerToClient),
  ]

  /// The `SETTINGS` both our sides send (§5.2).
  static let defaultSettings = Frame.settings([
    Setting(.maxFrameSize, 16_384),
    Setting(.maxConcurrentStreams, 256),
    Setting(.initialWindowSize, 1_048_576),
    Setting(.maxMetadataSize, 8_192),
  ])

  /// Raises the connection window from 65,535 to 4 MiB.
  static let connectionWindowRaise = Frame.windowUpdate(streamID: 0, increment: 4 * 1024 * 1024 - 65_535)

  /// `grpc-timeout: 1S` and a binary entry.
  static let unaryRequestMetadata: Metadata = {
    var metadata = Metadata()
    metadata.addString("1S", forKey: "grpc-timeout")
    metadata.addBinary([0xDE, 0xAD, 0xBE, 0xEF], forKey: "x-trace-bin")
    return metadata
  }()

  static let unaryRequestHeaders = Frame.headers(
    streamID: 1,
    path: "/grpc.testing.TestService/UnaryCall",
    metadata: unaryRequestMetadata,
    endStream: false
  )

  static let okTrailers = Frame.trailers(streamID: 1, status: Status(code: .ok, message: ""), metadata: [:])

  /// §16, client to server: `SimpleRequest{response_size: 4}` in one fragment that also half-closes.
  static let unaryCallClientToServer: [FrameParser.Element] = [
    .preface(.clientDefault),
    .frame(defaultSettings),
    .frame(connectionWindowRaise),
    .frame(.settingsAck),
    .frame(unaryRequestHeaders),
    .frame(.message(streamID: 1, fragment: ByteBuffer(bytes: [0x10, 0x04]), flags: [.endMessage, .endStream])),
  ]

  /// §16, server to client: `SimpleResponse{payload: {body: 00 00 00 00}}`, then status OK.
  static let unaryCallServerToClient: [FrameParser.Element] = [
    .preface(.selected(1)),
    .frame(defaultSettings),
    .frame(connectionWindowRaise),
    .frame(.settingsAck),
    .frame(.headers(streamID: 1, path: "", metadata: [:], endStream: false)),
    .frame(
      .message(streamID: 1, fragment: ByteBuffer(bytes: [0x0A, 0x06, 0x12, 0x04, 0, 0, 0, 0]), flags: .endMessage)
    ),
    .frame(okTrailers),
  ]
}
