public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// Listens on a PostgreSQL notification channel for as long as the service runs and hands each payload to
/// `handle`; the way replicas tell each other about changes without polling.
///
/// Notifications sent while the listening connection is down (the database restarts) are lost: `listening` is
/// called every time listening (re)starts, so the owner can catch up from the tables. Reconnects after 1 s, then
/// waits twice as long after each failure up to ``maximumRetryDelay`` (back to 1 s once it listens again); the
/// first failure of an outage is logged as a warning, the retries at debug level, and the recovery as a notice.
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

  /// The longest wait between two attempts to listen again while the database is unreachable.
  public static let maximumRetryDelay: Duration = .seconds(10)

  public func run() async throws {
    await cancelWhenGracefulShutdown {
      var failures = 0
      while !Task.isCancelled {
        do {
          try await self.client.withConnection { connection in
            try await connection.listen(on: self.channel) { notifications in
              if failures > 0 {
                self.logger.notice("listening for notifications again", metadata: ["channel": "\(self.channel)"])
                failures = 0
              }
              await self.listening()
              for try await notification in notifications {
                await self.handle(notification.payload)
              }
            }
          }
        } catch {
          if Task.isCancelled { return }
          failures += 1
          let metadata: Logger.Metadata = ["channel": "\(self.channel)", "error": "\(error)", "attempt": "\(failures)"]
          if failures == 1 {
            self.logger.warning("notifications interrupted; listening again", metadata: metadata)
          } else {
            self.logger.debug("listening again failed", metadata: metadata)
          }
        }
        try? await Task.sleep(for: Self.retryDelay(afterFailures: failures))
      }
    }
  }

  /// 1 s after the first failure (and after a listen that ended normally), doubling up to ``maximumRetryDelay``.
  static func retryDelay(afterFailures failures: Int) -> Duration {
    min(.seconds(1) * (1 << min(max(failures - 1, 0), 16)), Self.maximumRetryDelay)
  }
}
