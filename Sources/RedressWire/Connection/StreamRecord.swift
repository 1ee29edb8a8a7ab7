import GRPCCore
import NIOCore

/// What one side has queued to send on a stream, in order.
enum OutboundItem {
  /// `HEADERS`: request (with a path) or response (empty path).
  case headers(path: String, metadata: Metadata)
  /// One message, fragmented as windows allow; `compressed` sets the `COMPRESSED` flag.
  case message(ByteBuffer, compressed: Bool)
  /// The client's half-close: an empty `MESSAGE` with `END_STREAM`.
  case endStream
  /// The server's status and trailing metadata.
  case trailers(Status, Metadata)
}

/// The protocol state of one stream, owned by its connection's ``ConnectionStateMachine``.
///
/// What the async side reads from and the timers live in the ``ConnectionHandler``, keyed by ``key``.
final class StreamRecord {
  /// A key unique within the connection, valid before a client stream has a wire id.
  let key: UInt64
  /// The wire id; 0 until a client stream sends its `HEADERS`.
  var id: UInt32

  // Sending.
  var sendWindow: Int
  var pending = CircularBuffer<(item: OutboundItem, promise: EventLoopPromise<Void>?)>()
  /// Octets of the head message already sent.
  var headSent = 0
  var isReady = false
  var sentHeaders = false
  /// This side sent `END_STREAM` or `TRAILERS`.
  var localClosed = false

  // Receiving.
  var receiveWindow: Int
  var pendingCredit = 0
  var receivedHeaders = false
  /// The peer sent `END_STREAM` (or `TRAILERS`).
  var remoteClosed = false
  /// Set once the inbound side failed (message too large, request timeout): later fragments are dropped.
  var discardingInbound = false
  /// The `grpc-encoding` of messages the peer sends on this stream; `nil` for none.
  var inboundEncoding: CompressionAlgorithm?
  var partial: ByteBuffer?
  var partialCompressed = false
  var partialBytes = 0
  var partialCredited = 0
  var unreadMessages = 0
  /// Octets of `partial` reserved in the connection's ``InboundBudget``.
  var reservedBytes = 0
  /// Servers: the request timer runs (``ConnectionConfig/requestTimeout``): headers arrived, the end of the
  /// first message has not.
  var awaitingRequest = false

  init(key: UInt64, id: UInt32, sendWindow: Int, receiveWindow: Int) {
    self.key = key
    self.id = id
    self.sendWindow = sendWindow
    self.receiveWindow = receiveWindow
  }
}
