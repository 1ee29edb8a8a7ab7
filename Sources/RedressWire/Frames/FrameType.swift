/// The type octet of a frame header (docs/PROTOCOL.md §4).
public enum FrameType: UInt8, Hashable, Sendable, CaseIterable {
  case settings = 0x0
  case headers = 0x1
  case message = 0x2
  case trailers = 0x3
  case resetStream = 0x4
  case ping = 0x5
  case goAway = 0x6
  case windowUpdate = 0x7
}

/// The flags octet of a frame header. Which bits mean what depends on the frame type.
public struct FrameFlags: OptionSet, Hashable, Sendable {
  /// The raw flags octet.
  public var rawValue: UInt8

  /// Wraps a raw flags octet.
  public init(rawValue: UInt8) {
    self.rawValue = rawValue
  }

  /// `SETTINGS` and `PING`: this frame acknowledges the peer's.
  public static let ack = FrameFlags(rawValue: 0x1)
  /// `HEADERS` and `MESSAGE`: the sender sends nothing more on this stream (half-close).
  public static let endStream = FrameFlags(rawValue: 0x1)
  /// `MESSAGE`: this fragment is the last one of its message.
  public static let endMessage = FrameFlags(rawValue: 0x2)
  /// `MESSAGE`: the message is compressed with the stream's `grpc-encoding`.
  public static let compressed = FrameFlags(rawValue: 0x4)
}
