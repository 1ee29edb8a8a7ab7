import Foundation
import Logging
import PostgresNIO
import RedressSchemas
public import ServiceLifecycle

/// Live changes from every replica: listens on PostgreSQL's `redress_remedy` channel and publishes each
/// notified change to this replica's watchers, so a `WatchRemedy` here sees a change made through another
/// replica without polling. Watchers skip versions they have and fill gaps from the store, so a change that is
/// published twice (locally and from its notification) or out of order still reaches them once, in order.
///
/// While the listening connection is down (the database restarts) notifications are lost; a watcher catches up
/// at the next change of its remedy, which it sees as a gap and fills from the store. Reconnects every second.
public struct RemedyChangeListener: Service {
  let store: PostgresRemediationStore
  let broadcaster: RemedyBroadcaster
  let logger: Logger

  init(store: PostgresRemediationStore, broadcaster: RemedyBroadcaster, logger: Logger) {
    self.store = store
    self.broadcaster = broadcaster
    self.logger = logger
  }

  public func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          try await self.store.client.withConnection { connection in
            try await connection.listen(on: PostgresRemediationStore.channel) { notifications in
              for try await notification in notifications {
                await self.deliver(notification.payload)
              }
            }
          }
        } catch {
          if Task.isCancelled { return }
          self.logger.warning("change notifications interrupted; listening again", metadata: ["error": "\(error)"])
        }
        try? await Task.sleep(for: .seconds(1))
      }
    }
  }

  /// `"<remedy id> <version>"` → the stored change, published.
  private func deliver(_ payload: String) async {
    let parts = payload.split(separator: " ")
    guard parts.count == 2, let version = Int64(parts[1]) else {
      self.logger.warning("ignored a malformed change notification", metadata: ["payload": "\(payload.prefix(200))"])
      return
    }
    do {
      if let change = try await self.store.change(remedyID: String(parts[0]), version: version) {
        self.broadcaster.publish(change)
      }
    } catch {
      self.logger.warning("a notified change could not be read", metadata: ["remedy": "\(parts[0])", "error": "\(error)"])
    }
  }
}
