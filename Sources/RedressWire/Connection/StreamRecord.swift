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

/// The state of one stream, owned by its connection's event loop.
final class StreamRecord {
  /// A key unique within the connection, valid before a client stream has a wire id.
  let key: UInt64
  /// The wire id; 0 until a client stream sends its `HEADERS`.
  var id: UInt32

  /// Where received parts go: request parts on a server, response parts on a client.
  let inbound: Inbound

  enum Inbound {
    case server(InboundQueue<RPCRequestPart<WireBytes>>, CancellationSlot)
    case client(InboundQueue<RPCResponsePart<WireBytes>>)
  }

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
  /// Set once the inbound side failed (message too large): later fragments are dropped.
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
  /// Servers: fires if the request has not arrived (``ConnectionConfig/requestTimeout``).
  var requestTimer: Scheduled<Void>?

  init(key: UInt64, id: UInt32, inbound: Inbound, sendWindow: Int, receiveWindow: Int) {
    self.key = key
    self.id = id
    self.inbound = inbound
    self.sendWindow = sendWindow
    self.receiveWindow = receiveWindow
  }

  /// Fails the reader with `error`.
  func failInbound(_ error: any Error) {
    switch self.inbound {
    case .server(let queue, let slot):
      // Cancel first: a handler woken by the failed read must already see its RPC cancelled.
      slot.cancel()
      queue.fail(error)
    case .client(let queue):
      queue.fail(error)
    }
  }

  /// Ends the reader after what is queued.
  func finishInbound() {
    switch self.inbound {
    case .server(let queue, _): queue.finish()
    case .client(let queue): queue.finish()
    }
  }

  /// Fails every queued write.
  func failPending(_ error: any Error) {
    while let (_, promise) = self.pending.popFirst() {
      promise?.fail(error)
    }
  }
}
