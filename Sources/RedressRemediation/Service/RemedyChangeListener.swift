import Logging
import PostgresNIO
import RedressSchemas
import RedressService

/// Live changes from every replica: listens on PostgreSQL's `redress_remedy` channel and publishes each
/// notified change to this replica's watchers, so a `WatchRemedy` here sees a change made through another
/// replica without polling. Watchers skip versions they have and fill gaps from the store, so a change that is
/// published twice (locally and from its notification) or out of order still reaches them once, in order.
///
/// While the listening connection is down (the database restarts) notifications are lost; a watcher catches up
/// at the next change of its remedy, which it sees as a gap and fills from the store.
enum RemedyChangeListener {
  /// - Parameter changed: Called for every notified change (wakes the webhook dispatcher: another replica's change
  ///   may have queued deliveries).
  static func make(
    store: PostgresRemediationStore, broadcaster: RemedyBroadcaster, changed: @escaping @Sendable () -> Void = {},
    logger: Logger
  ) -> PostgresListener {
    PostgresListener(client: store.client, channel: PostgresRemediationStore.channel, logger: logger) { payload in
      changed()
      await Self.deliver(payload, store: store, broadcaster: broadcaster, logger: logger)
    }
  }

  /// `"<remedy id> <version>"` → the stored change, published.
  private static func deliver(_ payload: String, store: PostgresRemediationStore, broadcaster: RemedyBroadcaster, logger: Logger) async {
    let parts = payload.split(separator: " ")
    guard parts.count == 2, let version = Int64(parts[1]) else {
      logger.warning("ignored a malformed change notification", metadata: ["payload": "\(payload.prefix(200))"])
      return
    }
    do {
      if let change = try await store.change(remedyID: String(parts[0]), version: version) {
        broadcaster.publish(change)
      }
    } catch {
      logger.warning("a notified change could not be read", metadata: ["remedy": "\(parts[0])", "error": "\(error)"])
    }
  }
}
