/// The identifier of a setting carried by a `SETTINGS` frame (docs/PROTOCOL.md §5).
public struct SettingID: RawRepresentable, Hashable, Sendable {
  /// The identifier as it travels on the wire.
  public var rawValue: UInt16

  /// Wraps a raw identifier; identifiers this version does not define are ignored by receivers.
  public init(rawValue: UInt16) {
    self.rawValue = rawValue
  }

  /// The largest frame payload the sender will accept, in octets.
  public static let maxFrameSize = SettingID(rawValue: 0x1)
  /// The most streams the sender lets its peer have open at once.
  public static let maxConcurrentStreams = SettingID(rawValue: 0x2)
  /// The initial flow-control window of each new stream, in octets.
  public static let initialWindowSize = SettingID(rawValue: 0x3)
  /// The largest metadata block (plus status message) the sender will accept, in octets.
  public static let maxMetadataSize = SettingID(rawValue: 0x4)
}

/// One `(identifier, value)` pair of a `SETTINGS` frame.
public struct Setting: Hashable, Sendable {
  /// Which setting.
  public var id: SettingID
  /// Its value.
  public var value: UInt32

  /// A setting pair.
  public init(_ id: SettingID, _ value: UInt32) {
    self.id = id
    self.value = value
  }
}

/// The settings one side announced, with the protocol's defaults for those it left out.
public struct PeerSettings: Hashable, Sendable {
  /// The smallest value `MAX_FRAME_SIZE` may take, and its default.
  public static let minimumMaxFrameSize = 16_384
  /// The largest value `MAX_FRAME_SIZE` may take (the 24-bit length field's maximum).
  public static let maximumMaxFrameSize = 16_777_215
  /// The largest flow-control window.
  public static let maximumWindowSize = Int(Int32.max)
  /// The window a connection starts with, before any `WINDOW_UPDATE` on stream 0.
  public static let initialConnectionWindowSize = 65_535

  /// `MAX_FRAME_SIZE`; default 16,384.
  public var maxFrameSize: Int = PeerSettings.minimumMaxFrameSize
  /// `MAX_CONCURRENT_STREAMS`; default 100.
  public var maxConcurrentStreams: Int = 100
  /// `INITIAL_WINDOW_SIZE`; default 65,535.
  public var initialWindowSize: Int = 65_535
  /// `MAX_METADATA_SIZE`; default 16,384.
  public var maxMetadataSize: Int = 16_384

  /// The protocol defaults.
  public init() {}

  /// Applies the pairs of a `SETTINGS` frame, checking each value against its bounds.
  ///
  /// - Throws: ``WireError`` with `PROTOCOL_ERROR` (or `FLOW_CONTROL_ERROR` for a window too
  ///   large) naming the offending setting.
  public mutating func apply(_ settings: [Setting]) throws(WireError) {
    for setting in settings {
      let value = Int(setting.value)
      switch setting.id {
      case .maxFrameSize:
        guard (Self.minimumMaxFrameSize...Self.maximumMaxFrameSize).contains(value) else {
          throw WireError(
            .protocolError,
            "MAX_FRAME_SIZE \(value) is outside 16384...16777215"
          )
        }
        self.maxFrameSize = value
      case .maxConcurrentStreams:
        guard value <= Int(Int32.max) else {
          throw WireError(.protocolError, "MAX_CONCURRENT_STREAMS \(value) exceeds 2^31-1")
        }
        self.maxConcurrentStreams = value
      case .initialWindowSize:
        guard value <= Self.maximumWindowSize else {
          throw WireError(.flowControlError, "INITIAL_WINDOW_SIZE \(value) exceeds 2^31-1")
        }
        self.initialWindowSize = value
      case .maxMetadataSize:
        guard value <= Self.maximumMaxFrameSize else {
          throw WireError(.protocolError, "MAX_METADATA_SIZE \(value) exceeds 16777215")
        }
        self.maxMetadataSize = value
      default:
        // Unknown settings are ignored so a later version can add some without a new preface.
        continue
      }
    }
  }

  /// The pairs to send to announce these settings.
  public var pairs: [Setting] {
    [
      Setting(.maxFrameSize, UInt32(self.maxFrameSize)),
      Setting(.maxConcurrentStreams, UInt32(self.maxConcurrentStreams)),
      Setting(.initialWindowSize, UInt32(self.initialWindowSize)),
      Setting(.maxMetadataSize, UInt32(self.maxMetadataSize)),
    ]
  }
}
