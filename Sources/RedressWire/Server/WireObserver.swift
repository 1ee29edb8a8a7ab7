/// What a server's connections report for metrics (``WireServerTransport/Config/observer``).
///
/// The wire does not depend on a metrics library: the service supplies an observer (RedressService's
/// `WireMetrics` records into Prometheus). Calls are made on event loops and must not block; bytes are reported
/// once per read burst and once per flush, not per frame.
public protocol WireObserver: Sendable {
  /// A connection was accepted (before TLS).
  func connectionOpened()
  /// An accepted connection closed.
  func connectionClosed()
  /// A connection was refused by a cap: `limit` is `server` or `address`.
  func connectionRefused(limit: String)
  /// A client opened an RPC stream.
  func streamOpened()
  /// Octets read from and written to connections (TLS records' payloads: the wire's own framing).
  func bytes(read: Int, written: Int)
  /// A `GOAWAY` was sent (`sent`) or received, with its code.
  func goAway(sent: Bool, code: WireErrorCode)
  /// A `RESET_STREAM` was sent (`sent`) or received, with its code.
  func reset(sent: Bool, code: WireErrorCode)
}
