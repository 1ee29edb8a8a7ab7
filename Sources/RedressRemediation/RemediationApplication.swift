public import Logging
public import NIOCore
public import RedressService
public import ServiceLifecycle
public import Tracing
import Foundation
import RedressSchemas

/// The remediation service, ready to run in-process: its store, the gRPC server and the deadline timer.
///
/// `redress-remediation` and `redress dev` both build one and run ``services`` in a `ServiceGroup` (in that
/// order: on graceful shutdown the timer stops and ends watch streams first, then the server drains).
///
/// ```swift
/// let app = try RemediationApplication(config: .defaults, server: serverConfig, databasePath: path,
///                                      directory: directory, rateLimiter: nil, logger: logger)
/// let group = ServiceGroup(services: app.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// ```
public final class RemediationApplication: Sendable {
  /// The gRPC server (remediation and health).
  public let server: RedressServer
  /// The service-level timers; tests call ``DeadlineTimer/checkDeadlines()`` directly.
  public let timer: DeadlineTimer
  /// The store, for tools and tests that read it directly.
  public let store: any RemediationStorage
  /// Fans committed changes out to watchers.
  let broadcaster: RemedyBroadcaster
  /// Delivers the webhook outbox.
  public let webhooks: WebhookDispatcher
  /// With PostgreSQL: the connection pool and the listener of other replicas' changes, run before the server
  /// (and stopped after it).
  private let databaseServices: [any Service]
  private let listener: (any Service)?
  private let postgres: PostgresRemediationStore?

  /// - Parameters:
  ///   - config: The playbook's policy and the timers.
  ///   - server: Address and TLS.
  ///   - databasePath: The SQLite file (created with its directory if missing).
  ///   - directory: Who may call.
  ///   - rateLimiter: Per-identity limits, or `nil`.
  ///   - clock: Where time comes from (a `ManualWallClock` in tests).
  public convenience init(
    config: RemediationConfig,
    server: RedressServer.Config,
    databasePath: String,
    directory: IdentityDirectory,
    rateLimiter: RateLimiter?,
    clock: any WallClock = SystemWallClock(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) throws {
    try self.init(
      config: config, server: server, database: .sqlite(path: databasePath), directory: directory,
      rateLimiter: rateLimiter, clock: clock, tracer: tracer, logger: logger
    )
  }

  /// - Parameters:
  ///   - database: The embedded SQLite file, or PostgreSQL for several replicas (run
  ///     ``migrate(_:logger:)`` first).
  public init(
    config: RemediationConfig,
    server: RedressServer.Config,
    database: RemediationDatabase,
    directory: IdentityDirectory,
    rateLimiter: RateLimiter?,
    clock: any WallClock = SystemWallClock(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) throws {
    let broadcaster = RemedyBroadcaster(bufferLimit: config.watchBufferedChanges)
    let store: any RemediationStorage
    switch database {
    case .sqlite(let path):
      var sqlite = try RemediationStore(path: path)
      sqlite.tracer = tracer
      store = sqlite
      self.databaseServices = []
      self.postgres = nil
    case .postgres(let settings):
      let client = try settings.makeClient(logger: logger)
      var postgres = PostgresRemediationStore(client: client, deadline: settings.connectTimeout * 2, logger: logger)
      postgres.tracer = tracer
      store = postgres
      self.databaseServices = [client]
      self.postgres = postgres
    }
    let playbook = Playbook(policy: config.policy)
    let metrics = RedressMetrics(durationBuckets: RemedyMeasures.buckets)
    let dispatcher = WebhookDispatcher(store: store, config: config.webhooks, metrics: metrics, tracer: tracer, logger: logger)
    self.webhooks = dispatcher
    // Another replica's change may have queued deliveries: its notification wakes this replica's dispatcher too.
    self.listener = self.postgres.map {
      RemedyChangeListener.make(store: $0, broadcaster: broadcaster, changed: { dispatcher.wake() }, logger: logger)
    }
    let service = RemediationService(
      store: store,
      playbook: playbook,
      clock: clock,
      broadcaster: broadcaster,
      metrics: metrics,
      committed: { dispatcher.wake() },
      logger: logger
    )
    let webhooksService = WebhooksService(
      store: store, config: config.webhooks, sender: dispatcher.sender, clock: clock, errors: service, logger: logger)
    self.store = store
    self.broadcaster = broadcaster
    // Open remedies by stage and how many are overdue, read at each scrape (within 2 s, else left as they were).
    metrics.onScrape {
      guard let counts = try? await withDatabaseDeadline(.seconds(2), { try await store.openRemedyCounts() }) else { return }
      for stage in Redress_V1_Stage.allCases where stage != .unspecified {
        let (open, overdue) = counts[stage] ?? (0, 0)
        metrics.setGauge("redress_remediation_remedies_open", [("stage", "\(stage)")], Double(open))
        metrics.setGauge("redress_remediation_remedies_overdue", [("stage", "\(stage)")], Double(overdue))
      }
    }
    // The webhook outbox: pending and dead deliveries, and how long the oldest pending one has waited.
    metrics.onScrape {
      guard let backlog = try? await withDatabaseDeadline(.seconds(2), { try await store.webhookBacklog() }) else { return }
      metrics.setGauge("redress_webhook_deliveries_pending", [], Double(backlog.pending))
      metrics.setGauge("redress_webhook_deliveries_dead", [], Double(backlog.dead))
      metrics.setGauge(
        "redress_webhook_oldest_pending_age_seconds", [], backlog.oldestPending.map { max(0, -$0.timeIntervalSinceNow) } ?? 0)
    }
    self.server = try RedressServer(
      config: server,
      services: [service, webhooksService],
      directory: directory,
      rateLimiter: rateLimiter,
      metrics: metrics,
      tracer: tracer,
      logger: logger
    )
    self.timer = DeadlineTimer(
      store: store,
      playbook: playbook,
      clock: clock,
      broadcaster: broadcaster,
      interval: config.deadlineCheckInterval,
      metrics: metrics,
      committed: { dispatcher.wake() },
      logger: logger
    )
  }

  /// The services to run, in order: the database pool (PostgreSQL), the server, the timer, the webhook
  /// dispatcher, the change listener (PostgreSQL). A `ServiceGroup` stops them in reverse order: watches end first, the pool last.
  public var services: [any Service] {
    var services = self.databaseServices + [self.server, self.timer, self.webhooks]
    if let listener = self.listener { services.append(listener) }
    if let postgres = self.postgres {
      services.append(DatabaseHealth(health: self.server.health, timeout: postgres.deadline) { try await postgres.ping() })
    }
    return services
  }

  /// Applies the PostgreSQL schema migrations (safe when replicas start at once), with a pool of its own that
  /// is closed afterwards. Call before running ``services``.
  public static func migrate(_ settings: PostgresSettings, logger: Logger) async throws {
    try await Self.withPostgres(settings, logger: logger) { try await $0.migrate() }
  }

  /// Moves a SQLite database (the embedded default) to PostgreSQL: migrates the PostgreSQL schema, then copies
  /// every remedy with its change log and the groups into it (which must hold no remedies yet).
  ///
  /// - Returns: How many remedies were copied.
  public static func importSQLite(at path: String, into settings: PostgresSettings, logger: Logger) async throws -> Int {
    guard FileManager.default.fileExists(atPath: path) else {
      throw ServiceSettings.SettingsError("no SQLite database at \(path)")
    }
    let sqlite = try RemediationStore(path: path)
    return try await Self.withPostgres(settings, logger: logger) { postgres in
      try await postgres.migrate()
      return try await postgres.importRemedies(from: sqlite)
    }
  }

  /// Runs `body` with a store over a pool of its own, closed afterwards.
  private static func withPostgres<T: Sendable>(
    _ settings: PostgresSettings,
    logger: Logger,
    _ body: (PostgresRemediationStore) async throws -> T
  ) async throws -> T {
    try await settings.withClient(logger: logger) { client in
      try await body(PostgresRemediationStore(client: client, deadline: settings.connectTimeout * 2, logger: logger))
    }
  }

  /// The address the server listens on once it does.
  public var listeningAddress: SocketAddress {
    get async throws { try await self.server.listeningAddress }
  }

  /// The port of the gRPC HTTP/2 listener once it listens; `nil` when it is off.
  public var grpcHTTP2Port: Int? {
    get async throws { try await self.server.grpcHTTP2Port }
  }
}

/// Where the remediation service keeps its remedies.
public enum RemediationDatabase: Sendable {
  /// The embedded default: one SQLite file, one replica.
  case sqlite(path: String)
  /// Several replicas on one PostgreSQL database.
  case postgres(PostgresSettings)
}

extension RemediationApplication {
  /// The database file name under the configured data directory.
  public static let databaseFileName = "remediation.sqlite"

  /// An application from loaded service settings (address, TLS, identities, rate limit, data directory)
  /// and `config`.
  public convenience init(
    settings: ServiceSettings,
    config: RemediationConfig,
    clock: any WallClock = SystemWallClock(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) throws {
    try self.init(
      config: config,
      server: RedressServer.Config(
        host: settings.host, port: settings.port, security: settings.security, grpcHTTP2: settings.grpcHTTP2,
        metrics: settings.metrics),
      database: settings.postgres.map { .postgres($0) }
        ?? .sqlite(path: settings.dataDirectory.appendingPathComponent(Self.databaseFileName).path),
      directory: settings.directory,
      rateLimiter: settings.rateLimit.map { RateLimiter(config: $0, clock: clock) },
      clock: clock,
      tracer: tracer,
      logger: logger
    )
  }
}
