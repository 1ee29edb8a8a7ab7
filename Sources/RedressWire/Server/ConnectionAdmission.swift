package import NIOCore
import Synchronization

/// Counts a server's open connections, in all and per remote address, and admits a new one only while
/// both are under their caps (issue 11, finding 2). Checked as a connection is accepted, before TLS: a
/// refused connection costs a descriptor for a moment and no handshake.
package final class ConnectionAdmission: Sendable {
  package enum Refusal: Sendable, Equatable {
    case server(limit: Int)
    case address(limit: Int)
  }

  private struct State {
    var total = 0
    var byAddress: [String: Int] = [:]
  }

  private let maxConnections: Int
  private let maxPerAddress: Int
  private let state = Mutex(State())

  package init(maxConnections: Int, maxPerAddress: Int) {
    self.maxConnections = maxConnections
    self.maxPerAddress = maxPerAddress
  }

  /// The host part of `address` (no port), the unit the per-address cap counts.
  package static func key(_ address: SocketAddress?) -> String {
    address?.ipAddress ?? address?.pathname ?? "unknown"
  }

  /// Admits a connection from `key`, or says which cap refuses it. An admitted one must be ``release(_:)``d.
  package func admit(_ key: String) -> Refusal? {
    self.state.withLock { state in
      if state.total >= self.maxConnections { return .server(limit: self.maxConnections) }
      let fromAddress = state.byAddress[key, default: 0]
      if fromAddress >= self.maxPerAddress { return .address(limit: self.maxPerAddress) }
      state.total += 1
      state.byAddress[key] = fromAddress + 1
      return nil
    }
  }

  /// Ends an admitted connection from `key`.
  package func release(_ key: String) {
    self.state.withLock { state in
      state.total -= 1
      if let count = state.byAddress[key], count > 1 {
        state.byAddress[key] = count - 1
      } else {
        state.byAddress.removeValue(forKey: key)
      }
    }
  }

  /// Connections open now.
  package var count: Int { self.state.withLock { $0.total } }
}
