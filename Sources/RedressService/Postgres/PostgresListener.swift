public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// Listens on a PostgreSQL notification channel for as long as the service runs and hands each payload to
/// `handle`; the way replicas tell each other about changes without polling.
///
/// Notifications sent while the listening connection is down (the database restarts) are lost: `listening` is
/// called every time listening (re)starts, so the owner can catch up from the tables. Reconnects every second.
public struct PostgresListener: Service {
  let client: PostgresClient
  let channel: String
  let logger: Logger
  let listening: @Sendable () async -> Void
  let handle: @Sendable (String) async -> Void

  /// - Parameters:
  ///   - listening: Called each time LISTEN is in place (first and after every reconnect).
  ///   - handle: Called with each notification's payload, in order.
  public init(
    client: PostgresClient,
    channel: String,
    logger: Logger,
    listening: @escaping @Sendable () async -> Void = {},
    handle: @escaping @Sendable (String) async -> Void
  ) {
    self.client = client
    self.channel = channel
    self.logger = logger
    self.listening = listening
    self.handle = handle
  }

  public func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          try await self.client.withConnection { connection in
            try await connection.listen(on: self.channel) { notifications in
              await self.listening()
              for try await notification in notifications {
                await self.handle(notification.payload)
              }
            }
          }
        } catch {
          if Task.isCancelled { return }
          self.logger.warning(
            "notifications interrupted; listening again", metadata: ["channel": "\(self.channel)", "error": "\(error)"])
        }
        try? await Task.sleep(for: .seconds(1))
      }
    }
  }
}
