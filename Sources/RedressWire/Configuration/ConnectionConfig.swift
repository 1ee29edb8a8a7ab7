public import GRPCCore

/// Limits and timers of one Redress wire connection, used by both transports.
///
/// Every limit is enforced by the receiver before it buffers what it limits; the values are
/// announced to the peer in `SETTINGS` where the protocol has a setting for them
/// (docs/PROTOCOL.md §5).
public struct ConnectionConfig: Sendable, Hashable {
  /// The largest frame payload accepted, in octets (`MAX_FRAME_SIZE`); 16,384 to 16,777,215.
  public var maxFrameSize: Int
  /// The largest message accepted, in octets, counted as its fragments arrive. A larger request
  /// fails the RPC with `resourceExhausted`.
  public var maxMessageSize: Int
  /// The largest metadata block accepted, in octets (`MAX_METADATA_SIZE`).
  public var maxMetadataSize: Int
  /// The most streams the peer may have open at once (`MAX_CONCURRENT_STREAMS`); more are refused.
  public var maxConcurrentStreams: Int
  /// The flow-control window of each stream, in octets (`INITIAL_WINDOW_SIZE`): how much a slow
  /// reader lets its peer send before the peer must wait.
  public var streamWindowSize: Int
  /// The flow-control window of the whole connection, in octets.
  public var connectionWindowSize: Int
  /// The time allowed for the TLS handshake, the preface and the first `SETTINGS`.
  public var handshakeTimeout: Duration
  /// A connection with no open stream for this long is closed with `GOAWAY(NO_ERROR)`; `nil` never.
  public var idleTimeout: Duration?
  /// Pings sent to check that the peer is alive; `nil` sends none (the peer's are still answered).
  public var keepalive: Keepalive?
  /// The most `RST_STREAM`s (and stream errors) accepted from the peer per interval before the
  /// connection is closed with `ENHANCE_YOUR_CALM`.
  public var resetRateLimit: RateLimit
  /// The most `PING`s accepted from the peer per interval before the connection is closed with
  /// `ENHANCE_YOUR_CALM`.
  public var pingRateLimit: RateLimit
  /// Message compression (`grpc-encoding`, docs/PROTOCOL.md §7.7).
  public var compression: Compression
  /// The most octets this side holds received but not yet read, over all the connection's streams:
  /// fragments of messages still arriving plus whole messages queued for a reader. A `MESSAGE` that would
  /// pass it fails its RPC with `resourceExhausted` and is discarded; nothing is buffered past it. On a
  /// server the transport's ``WireServerTransport/Limits/maxBufferedInboundBytes`` bounds the sum over
  /// connections too.
  public var maxBufferedInboundBytes: Int
  /// Servers only: the time a stream has from its `HEADERS` to the end of its first message (or its
  /// `END_STREAM`). A request that has not arrived by then fails with `deadlineExceeded`, so a stalled
  /// client cannot hold a stream, its buffers and its connection open; `nil` waits forever.
  public var requestTimeout: Duration?

  /// Which compressed messages this side accepts, and how a server compresses its responses.
  public struct Compression: Sendable, Hashable {
    /// Algorithms this side decompresses and advertises in `grpc-accept-encoding`; a client may
    /// compress requests only with these. Uncompressed (`identity`) is always accepted.
    public var enabledAlgorithms: CompressionAlgorithmSet
    /// Servers only: the algorithm responses are compressed with when the client accepts it;
    /// `.none` sends them uncompressed.
    public var responseAlgorithm: CompressionAlgorithm

    /// Accepts `enabledAlgorithms`; compresses responses with `responseAlgorithm`.
    public init(enabledAlgorithms: CompressionAlgorithmSet, responseAlgorithm: CompressionAlgorithm = .none) {
      self.enabledAlgorithms = enabledAlgorithms
      self.responseAlgorithm = responseAlgorithm
    }

    /// gzip and deflate accepted (decompression is bounded by `maxMessageSize`); responses
    /// uncompressed.
    public static var defaults: Self {
      Self(enabledAlgorithms: [.gzip, .deflate], responseAlgorithm: .none)
    }
  }

  /// Keepalive pings.
  public struct Keepalive: Sendable, Hashable {
    /// Time between pings.
    public var interval: Duration
    /// Time to wait for the ping's `ACK` before closing the connection.
    public var timeout: Duration

    /// Pings every `interval`; closes if one is not answered within `timeout`.
    public init(interval: Duration, timeout: Duration) {
      self.interval = interval
      self.timeout = timeout
    }
  }

  /// At most `maxEvents` per `interval`.
  public struct RateLimit: Sendable, Hashable {
    /// Events allowed per interval.
    public var maxEvents: Int
    /// The interval.
    public var interval: Duration

    /// A limit of `maxEvents` per `interval`.
    public init(maxEvents: Int, per interval: Duration) {
      self.maxEvents = maxEvents
      self.interval = interval
    }
  }

  /// The defaults: 16 KiB frames, 4 MiB messages, 8 KiB metadata, 256 streams, 1 MiB stream and
  /// 4 MiB connection windows, 10 s handshake, 5 min idle, no keepalive, at most 1,000 resets
  /// and 50 pings per 10 s, gzip and deflate accepted, 8 MiB buffered inbound, 30 s for a request to arrive.
  public static var defaults: Self {
    Self(
      maxFrameSize: 16_384,
      maxMessageSize: 4 * 1024 * 1024,
      // Below MAX_FRAME_SIZE on purpose: a block between the two is a stream METADATA_TOO_LARGE for that
      // call alone; with both at 16,384 that error could never be sent (docs/PROTOCOL.md §5).
      maxMetadataSize: 8_192,
      maxConcurrentStreams: 256,
      streamWindowSize: 1024 * 1024,
      connectionWindowSize: 4 * 1024 * 1024,
      handshakeTimeout: .seconds(10),
      idleTimeout: .seconds(300),
      keepalive: nil,
      resetRateLimit: RateLimit(maxEvents: 1000, per: .seconds(10)),
      pingRateLimit: RateLimit(maxEvents: 50, per: .seconds(10)),
      compression: .defaults,
      maxBufferedInboundBytes: 8 * 1024 * 1024,
      requestTimeout: .seconds(30)
    )
  }

  /// The settings this side announces.
  var localSettings: PeerSettings {
    var settings = PeerSettings()
    settings.maxFrameSize = min(max(self.maxFrameSize, PeerSettings.minimumMaxFrameSize), PeerSettings.maximumMaxFrameSize)
    settings.maxConcurrentStreams = min(max(self.maxConcurrentStreams, 0), Int(Int32.max))
    settings.initialWindowSize = min(max(self.streamWindowSize, 0), PeerSettings.maximumWindowSize)
    settings.maxMetadataSize = min(max(self.maxMetadataSize, 0), PeerSettings.maximumMaxFrameSize)
    return settings
  }
}
