import Synchronization

/// Counts the octets received and not yet handed to a reader: fragments of messages still arriving and
/// whole messages queued unread. One per connection, each drawing on its server's, so neither one
/// connection nor all of them together can make a server buffer past its limit (issue 11, finding 2).
///
/// Reserved on the event loop as a fragment arrives; released from whichever thread reads or drops it.
package final class InboundBudget: Sendable {
  /// Which budget refused a reservation.
  package enum Refusal: Sendable {
    case connection(limit: Int)
    case server(limit: Int)

    /// What the stream's reader (and so the caller) is told.
    package var message: String {
      switch self {
      case .connection(let limit):
        return "The connection has \(limit) bytes of requests buffered, its limit (maxBufferedInboundBytes): "
          + "send fewer large messages at once on one connection, or retry later."
      case .server(let limit):
        return "The server has \(limit) bytes of requests buffered across its connections, its limit "
          + "(maxBufferedInboundBytes); retry later."
      }
    }
  }

  package let limit: Int
  private let parent: InboundBudget?
  private let isServerWide: Bool
  private let used = Atomic<Int>(0)

  /// A connection's budget of `limit` octets that also draws on its server's, when it has one.
  package init(connectionLimit limit: Int, server: InboundBudget?) {
    self.limit = max(0, limit)
    self.parent = server
    self.isServerWide = false
  }

  /// A server's budget of `limit` octets, shared by its connections.
  package init(serverLimit limit: Int) {
    self.limit = max(0, limit)
    self.parent = nil
    self.isServerWide = true
  }

  /// Octets reserved now.
  package var inUse: Int { self.used.load(ordering: .relaxed) }

  /// Reserves `bytes` here and in the parent; nothing is reserved if either would pass its limit.
  package func reserve(_ bytes: Int) -> Refusal? {
    guard bytes > 0 else { return nil }
    var current = self.used.load(ordering: .relaxed)
    while true {
      let (next, overflow) = current.addingReportingOverflow(bytes)
      if overflow || next > self.limit {
        return self.isServerWide ? .server(limit: self.limit) : .connection(limit: self.limit)
      }
      let (exchanged, original) = self.used.compareExchange(expected: current, desired: next, ordering: .relaxed)
      if exchanged { break }
      current = original
    }
    if let parent = self.parent, let refusal = parent.reserve(bytes) {
      self.used.subtract(bytes, ordering: .relaxed)
      return refusal
    }
    return nil
  }

  /// Gives back `bytes` reserved earlier.
  package func release(_ bytes: Int) {
    guard bytes > 0 else { return }
    self.used.subtract(bytes, ordering: .relaxed)
    self.parent?.release(bytes)
  }
}
