public import GRPCCore
public import NIOCore

/// One frame of the Redress wire, decoded (docs/PROTOCOL.md §4–§8).
public enum Frame: Hashable, Sendable {
  /// `SETTINGS` (stream 0): the sender's settings; sent exactly once, first, by each side.
  case settings([Setting])
  /// `SETTINGS` with `ACK` (stream 0): acknowledges the peer's settings.
  case settingsAck
  /// `HEADERS`: opens a stream (request, with a path) or starts a response (no path).
  case headers(streamID: UInt32, path: String, metadata: Metadata, endStream: Bool)
  /// `MESSAGE`: one fragment of one message.
  case message(streamID: UInt32, fragment: ByteBuffer, flags: FrameFlags)
  /// `TRAILERS` (server to client): the RPC's status and trailing metadata; ends the stream.
  case trailers(streamID: UInt32, status: Status, metadata: Metadata)
  /// `RST_STREAM`: ends one stream at once.
  case resetStream(streamID: UInt32, code: WireErrorCode)
  /// `PING` (stream 0): eight opaque octets, echoed with `ACK`.
  case ping(data: UInt64, ack: Bool)
  /// `GOAWAY` (stream 0): no stream above `lastStreamID` was or will be processed.
  case goAway(lastStreamID: UInt32, code: WireErrorCode, debug: String)
  /// `WINDOW_UPDATE`: the receiver of the frame may send `increment` more message octets.
  case windowUpdate(streamID: UInt32, increment: UInt32)

  /// The frame's type.
  public var type: FrameType {
    switch self {
    case .settings, .settingsAck: .settings
    case .headers: .headers
    case .message: .message
    case .trailers: .trailers
    case .resetStream: .resetStream
    case .ping: .ping
    case .goAway: .goAway
    case .windowUpdate: .windowUpdate
    }
  }

  /// The stream the frame belongs to; 0 for connection frames.
  public var streamID: UInt32 {
    switch self {
    case .settings, .settingsAck, .ping, .goAway: 0
    case .headers(let id, _, _, _), .message(let id, _, _), .trailers(let id, _, _),
      .resetStream(let id, _), .windowUpdate(let id, _):
      id
    }
  }
}

/// The fixed nine-octet header in front of every frame payload.
public struct FrameHeader: Hashable, Sendable {
  /// The encoded size of a header.
  public static let length = 9
  /// The largest stream identifier (31 bits).
  public static let maxStreamID: UInt32 = 0x7FFF_FFFF

  /// Payload length in octets (24 bits).
  public var length: Int
  /// The raw type octet (may be a type this version does not know).
  public var type: UInt8
  /// The flags octet.
  public var flags: FrameFlags
  /// The stream identifier, reserved bit cleared.
  public var streamID: UInt32
}
