import GRPCCore
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import RedressWire

/// A closed connection leaves nothing behind (issue 11: the soak's RSS growth).
@Suite("Connection lifetime")
struct ConnectionLifetimeTests {
  @Test("a server connection's handler is freed once its channel closes, streams or not")
  func handlerFreedAfterClose() throws {
    weak var freed: ConnectionHandler?
    try {
      let channel = EmbeddedChannel()
      let handler = ConnectionHandler(role: .server(onStream: { _ in }), config: .defaults, logger: Logger(label: "test"))
      freed = handler
      try channel.pipeline.syncOperations.addHandler(handler)
      try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
      var opening = ByteBuffer()
      Preface.clientDefault.encode(into: &opening)
      FrameEncoder.encode(.settings([]), into: &opening)
      FrameEncoder.encode(.settingsAck, into: &opening)
      // A stream left half-sent when the connection closes.
      FrameEncoder.encode(.headers(streamID: 1, path: "/a.B/C", metadata: [:], endStream: false), into: &opening)
      try channel.writeInbound(opening)
      _ = try channel.finish(acceptAlreadyClosed: true)
    }()
    // Before the fix the handler and its context held each other (and the channel) forever.
    #expect(freed == nil, "the connection's handler outlived its channel")
  }
}
