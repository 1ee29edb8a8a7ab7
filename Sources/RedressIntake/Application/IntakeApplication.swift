import Foundation
public import Logging
public import Tracing
public import NIOCore
public import RedressService
public import ServiceLifecycle

/// The whole intake service, ready to run in a `ServiceGroup`: the store, the gRPC server and the outbox.
///
/// The executable and `redress dev` both build one and run ``services`` in their own group:
/// ```swift
/// let app = try IntakeApplication(config: config, directory: directory, rateLimit: .defaults, logger: logger)
/// let group = ServiceGroup(services: app.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
/// ``services`` is ordered so that graceful shutdown (which runs in reverse) first stops the server (no new
/// calls, in-flight calls finish and are committed), then the outbox, and closes the store last.
public final class IntakeApplication: Sendable {
  /// The database facade (shared with tests and embedding code): ``IntakeStore`` on SQLite,
  /// ``PostgresIntakeStore`` on PostgreSQL.
  public let store: any IntakeStorage
  /// The gRPC server.
  public let server: RedressServer
  /// The hand-off to remediation.
  public let outbox: RemediationOutbox
  private let storeLifetime: StoreLifetime
  /// With PostgreSQL: the pool and the listener that rings the outbox when another replica stores an incident.
  private let databaseServices: [any Service]
  /// With PostgreSQL: health follows the database (started after the server, which sets the first status).
  private let healthProbe: (any Service)?

  /// Opens the store (migrating it) and prepares the server and outbox; nothing listens until ``services`` run.
  ///
  /// - Parameters:
  ///   - config: Everything intake can be told; `config.server.security` must be set.
  ///   - directory: Who may call, their tenants and roles.
  ///   - rateLimit: Per-identity limits, or `nil` for none.
  ///   - clock: The wall clock for receipt times, key retention and outbox schedules.
  ///   - logger: Logs at info level never carry tokens or payload text.
  public init(
    config: IntakeConfig,
    directory: IdentityDirectory,
    rateLimit: RateLimiter.Config?,
    clock: any WallClock = SystemWallClock(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) throws {
    guard let security = config.server.security else {
      throw IntakeError(
        code: .configuration,
        message: "server.security is not set: configure TLS (certificate, key, CA), or plaintext only for tests"
      )
    }
    guard config.limits.maxPageSize >= 1, config.limits.defaultPageSize >= 1,
      config.limits.defaultPageSize <= config.limits.maxPageSize, config.limits.maxItemsPerBulkCall >= 1,
      config.groupCommit.maxBatchSize >= 1, config.outbox.batchSize >= 1
    else {
      throw IntakeError(
        code: .configuration,
        message: "limits must be positive and the default page size at most the maximum page size"
      )
    }
    guard config.idempotency.retention >= .seconds(7 * 24 * 60 * 60) else {
      throw IntakeError(code: .configuration, message: "idempotency retention must be at least 7 days")
    }
    let storeConfig = IntakeStore.Config(
      idempotencyRetention: config.idempotency.retention, maxBatchSize: config.groupCommit.maxBatchSize)
    let metrics = RedressMetrics()
    var postgres: PostgresIntakeStore?
    if let settings = config.storage.postgres {
      let client = try settings.makeClient(logger: logger)
      let store = PostgresIntakeStore(
        client: client, config: storeConfig, clock: clock, deadline: settings.connectTimeout * 2, metrics: metrics,
        logger: logger)
      postgres = store
      self.store = store
    } else {
      self.store = try IntakeStore(path: config.storage.databasePath, config: storeConfig, clock: clock, metrics: metrics)
    }
    let service = IntakeService(
      store: self.store,
      triage: config.triage,
      limits: config.limits,
      clock: clock,
      metrics: metrics,
      tracer: tracer,
      logger: logger
    )
    self.server = try RedressServer(
      config: .init(
        host: config.server.host,
        port: config.server.port,
        security: security,
        connection: config.server.connection,
        grpcHTTP2: config.server.grpcHTTP2,
        metrics: config.server.metrics
      ),
      services: [service],
      directory: directory,
      rateLimiter: rateLimit.map { RateLimiter(config: $0, clock: clock) },
      metrics: metrics,
      tracer: tracer,
      logger: logger
    )
    self.outbox = RemediationOutbox(store: self.store, config: config.outbox, clock: clock, tracer: tracer, logger: logger)
    // The outbox's backlog, read at each scrape (bounded: a scrape must answer while the database is down).
    let store = self.store
    metrics.onScrape {
      let read = try? await withDatabaseDeadline(.seconds(2)) {
        (try await store.pendingDeliveryCount(), try await store.oldestPendingReceipt())
      }
      guard let (count, oldest) = read else { return }
      metrics.setGauge("redress_intake_outbox_backlog", [], Double(count))
      metrics.setGauge(
        "redress_intake_outbox_oldest_age_seconds", [], oldest.map { max(0, clock.now().timeIntervalSince($0)) } ?? 0)
    }
    self.storeLifetime = StoreLifetime(
      store: self.store, purgeInterval: config.idempotency.purgeInterval, logger: logger)
    if let postgres {
      let store = postgres
      self.databaseServices = [
        store.client,
        PostgresListener(
          client: store.client, channel: PostgresIntakeStore.channel, logger: logger,
          // Also on every (re)connect: incidents stored while the listener was down are delivered too.
          listening: { store.newIncidents.ring() },
          handle: { _ in store.newIncidents.ring() }
        ),
      ]
      self.healthProbe = DatabaseHealth(health: self.server.health, timeout: store.deadline) { try await store.ping() }
    } else {
      self.databaseServices = []
      self.healthProbe = nil
    }
  }

  /// The services to run, in start order: the database pool and listener (PostgreSQL), store lifetime,
  /// outbox, server, and the database health probe (PostgreSQL) once the server has set its status.
  public var services: [any Service] {
    self.databaseServices + [self.storeLifetime, self.outbox, self.server] + (self.healthProbe.map { [$0] } ?? [])
  }

  /// Applies the PostgreSQL schema migrations (safe when replicas start at once), with a pool of its own that
  /// is closed afterwards. Call before starting a replica on PostgreSQL.
  public static func migrate(_ settings: PostgresSettings, logger: Logger) async throws {
    try await Self.withPostgres(settings, logger: logger) { try await $0.migrate() }
  }

  /// Moves a SQLite database (the embedded default) to PostgreSQL: migrates the PostgreSQL schema, then copies
  /// every incident with its idempotency key, group and outbox row (the target must hold no incidents).
  ///
  /// - Returns: How many incidents were copied.
  public static func importSQLite(at path: String, into settings: PostgresSettings, logger: Logger) async throws -> Int {
    guard FileManager.default.fileExists(atPath: path) else {
      throw ServiceSettings.SettingsError("no SQLite database at \(path)")
    }
    let sqlite = try IntakeStore(path: path)
    defer { try? sqlite.close() }
    return try await Self.withPostgres(settings, logger: logger) { postgres in
      try await postgres.migrate()
      return try await postgres.importIncidents(from: sqlite)
    }
  }

  /// Runs `body` with a store over a pool of its own, closed afterwards.
  private static func withPostgres<T: Sendable>(
    _ settings: PostgresSettings,
    logger: Logger,
    _ body: (PostgresIntakeStore) async throws -> T
  ) async throws -> T {
    try await settings.withClient(logger: logger) { client in
      try await body(PostgresIntakeStore(client: client, deadline: settings.connectTimeout * 2, logger: logger))
    }
  }

  /// Where the server listens, once it does (useful with port 0).
  public var listeningAddress: SocketAddress {
    get async throws { try await self.server.listeningAddress }
  }

  /// The port of the gRPC HTTP/2 listener once it listens; `nil` when it is off.
  public var grpcHTTP2Port: Int? {
    get async throws { try await self.server.grpcHTTP2Port }
  }
}

/// Keeps the store open while the group runs, purges expired idempotency keys now and then, and closes the
/// store last on shutdown (it is first in the group, and graceful shutdown goes in reverse order).
private struct StoreLifetime: Service {
  let store: any IntakeStorage
  let purgeInterval: Duration
  let logger: Logger

  func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        do {
          let purged = try await self.store.purgeExpiredIdempotencyKeys()
          if purged > 0 {
            self.logger.info("expired idempotency keys purged", metadata: ["count": "\(purged)"])
          }
        } catch is CancellationError {
          return
        } catch {
          self.logger.warning("purging expired idempotency keys failed", metadata: ["error": "\(error)"])
        }
        try? await Task.sleep(for: self.purgeInterval)
      }
    }
    // Also reached on cancellation; either way nothing writes any more.
    do {
      try await self.store.close()
      self.logger.info("incident store closed")
    } catch {
      self.logger.error("closing the incident store failed", metadata: ["error": "\(error)"])
    }
  }
}
