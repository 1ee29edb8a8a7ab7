import CoreMetrics
import RedressWire

/// The wire's connections, streams and bytes in a service's ``RedressMetrics`` (docs/OPERATIONS.md, "Wire").
///
/// The frequent series (bytes, streams, connections) keep their handles, so a report is an atomic add; `GOAWAY`,
/// `RESET_STREAM` and refusals are rare and look theirs up. Codes a peer made up are counted as `UNKNOWN`, so a
/// peer cannot grow the label set.
struct WireMetrics: WireObserver {
  private let metrics: RedressMetrics
  private let open: Meter
  private let accepted: Counter
  private let streams: Counter
  private let bytesRead: Counter
  private let bytesWritten: Counter

  init(metrics: RedressMetrics) {
    self.metrics = metrics
    self.open = Meter(label: "redress_wire_connections_open", factory: metrics.factory)
    self.accepted = Counter(label: "redress_wire_connections_total", factory: metrics.factory)
    self.streams = Counter(label: "redress_wire_streams_total", factory: metrics.factory)
    self.bytesRead = Counter(label: "redress_wire_bytes_total", dimensions: [("direction", "in")], factory: metrics.factory)
    self.bytesWritten = Counter(label: "redress_wire_bytes_total", dimensions: [("direction", "out")], factory: metrics.factory)
  }

  func connectionOpened() {
    self.accepted.increment()
    self.open.increment()
  }

  func connectionClosed() {
    self.open.decrement()
  }

  func connectionRefused(limit: String) {
    self.metrics.increment("redress_wire_connections_refused_total", [("limit", limit)])
  }

  func streamOpened() {
    self.streams.increment()
  }

  func bytes(read: Int, written: Int) {
    if read > 0 { self.bytesRead.increment(by: read) }
    if written > 0 { self.bytesWritten.increment(by: written) }
  }

  func goAway(sent: Bool, code: WireErrorCode) {
    self.metrics.increment("redress_wire_goaway_total", [("direction", sent ? "sent" : "received"), ("code", Self.name(code))])
  }

  func reset(sent: Bool, code: WireErrorCode) {
    self.metrics.increment("redress_wire_resets_total", [("direction", sent ? "sent" : "received"), ("code", Self.name(code))])
  }

  private static func name(_ code: WireErrorCode) -> String {
    let text = code.description
    return text.hasPrefix("UNKNOWN") ? "UNKNOWN" : text
  }
}
