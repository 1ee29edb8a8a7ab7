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
      // A stream left half-sent when the connection closes.
      try WireFuzzing.open(handler, on: channel, then: [.headers(streamID: 1, path: "/a.B/C", metadata: [:], endStream: false)])
      _ = try channel.finish(acceptAlreadyClosed: true)
    }()
    // Before the fix the handler and its context held each other (and the channel) forever.
    #expect(freed == nil, "the connection's handler outlived its channel")
  }
}
