public import RedressService
public import RedressWire

/// Everything the intake service can be told, each limit with its unit in its name or type.
///
/// Start from ``defaults`` and change what differs:
/// ```swift
/// var config = IntakeConfig.defaults
/// config.storage.databasePath = "/var/lib/redress/intake.sqlite"
/// config.server.security = .tls(serverTLS)
/// ```
public struct IntakeConfig: Sendable {
  /// Where and how the gRPC server listens.
  public struct Server: Sendable {
    /// Address to bind; `127.0.0.1` by default.
    public var host: String
    /// Port; 0 picks a free one (see ``IntakeApplication/listeningAddress``).
    public var port: Int
    /// TLS (client certificates verified if presented) or, for tests only, plaintext. `nil` (the default)
    /// makes ``IntakeApplication`` refuse to start: there is no safe default certificate.
    public var security: ServerSecurity?
    /// Frame, message and stream limits of the wire.
    public var connection: ConnectionConfig
    /// Standard gRPC over HTTP/2 as well (docs/CLIENTS.md); `nil` (the default): off.
    public var grpcHTTP2: GRPCHTTP2Listener?
    /// Prometheus metrics on `GET /metrics` over HTTPS (docs/OPERATIONS.md); `nil` (the default): off.
    public var metrics: MetricsListener?

    /// Listens on `host:port` with `security`.
    public init(host: String, port: Int, security: ServerSecurity?, connection: ConnectionConfig = .defaults) {
      self.host = host
      self.port = port
      self.security = security
      self.connection = connection
    }
  }

  /// The database: the embedded SQLite file, or PostgreSQL for several replicas.
  public struct Storage: Sendable {
    /// Path of the SQLite database file (its directory is created if needed); unused with ``postgres``.
    public var databasePath: String
    /// PostgreSQL instead of SQLite (run ``IntakeApplication/migrate(_:logger:)`` before starting).
    public var postgres: PostgresSettings?

    /// The SQLite database at `databasePath`, or PostgreSQL when `postgres` is set.
    public init(databasePath: String, postgres: PostgresSettings? = nil) {
      self.databasePath = databasePath
      self.postgres = postgres
    }
  }

  /// Idempotency keys.
  public struct Idempotency: Sendable, Hashable {
    /// How long a key is remembered after its first use; at least 7 days by policy. A retry after this
    /// creates a new incident.
    public var retention: Duration
    /// How often keys past retention are deleted (they are ignored from the moment they expire; this only
    /// reclaims space).
    public var purgeInterval: Duration

    /// Keys honoured for `retention`, expired ones deleted every `purgeInterval`.
    public init(retention: Duration, purgeInterval: Duration = .seconds(3600)) {
      self.retention = retention
      self.purgeInterval = purgeInterval
    }

    /// 7 days, purged hourly.
    public static var defaults: Self { Self(retention: .seconds(7 * 24 * 60 * 60), purgeInterval: .seconds(3600)) }
  }

  /// Group commit: how concurrent submits share one write transaction (one fsync).
  public struct GroupCommit: Sendable, Hashable {
    /// Most submissions written in one transaction; the rest wait for the next one.
    public var maxBatchSize: Int

    /// At most `maxBatchSize` submissions per transaction.
    public init(maxBatchSize: Int) {
      self.maxBatchSize = maxBatchSize
    }

    /// 256 submissions per transaction.
    public static var defaults: Self { Self(maxBatchSize: 256) }
  }

  /// Request limits beyond a single incident's fields (those are in docs/INTAKE.md).
  public struct Limits: Sendable, Hashable {
    /// Most items one `SubmitIncidents` call may carry; more fail the call with `invalidArgument`.
    public var maxItemsPerBulkCall: Int
    /// `ListIncidents` page size when the request says 0.
    public var defaultPageSize: Int
    /// Largest `ListIncidents` page size accepted.
    public var maxPageSize: Int
    /// How far in the future `occurred_at` may be, for clock skew between tools and intake.
    public var occurredAtFutureTolerance: Duration

    /// Request limits.
    public init(
      maxItemsPerBulkCall: Int,
      defaultPageSize: Int,
      maxPageSize: Int,
      occurredAtFutureTolerance: Duration
    ) {
      self.maxItemsPerBulkCall = maxItemsPerBulkCall
      self.defaultPageSize = defaultPageSize
      self.maxPageSize = maxPageSize
      self.occurredAtFutureTolerance = occurredAtFutureTolerance
    }

    /// 1000 items per bulk call, pages of 50 (at most 500), 5 minutes of clock skew.
    public static var defaults: Self {
      Self(maxItemsPerBulkCall: 1000, defaultPageSize: 50, maxPageSize: 500, occurredAtFutureTolerance: .seconds(300))
    }
  }

  /// The hand-off of accepted incidents to the remediation service.
  public struct Outbox: Sendable {
    /// Where remediation listens and how to reach it: TLS with intake's client certificate (mutual TLS).
    public struct Remediation: Sendable {
      /// Remediation's host name or address.
      public var host: String
      /// Remediation's port.
      public var port: Int
      /// Must carry intake's client certificate; remediation maps it to an identity with the `service` role.
      public var security: ClientSecurity

      /// Remediation at `host:port`, reached with `security`.
      public init(host: String, port: Int, security: ClientSecurity) {
        self.host = host
        self.port = port
        self.security = security
      }
    }

    /// Capped exponential backoff with jitter between delivery attempts of one incident: the wire client's own
    /// policy type, so the outbox and its connection back off the same way.
    public typealias Backoff = WireClientTransport.Backoff

    /// Remediation's address; `nil` keeps incidents `awaiting_remediation` (nothing is delivered).
    public var remediation: Remediation?
    /// Retry delays of failed deliveries.
    public var backoff: Backoff
    /// Most incidents read from the outbox per round.
    public var batchSize: Int
    /// Deadline of one `OpenRemedy` call.
    public var callTimeout: Duration
    /// While remediation is unreachable, the longest the outbox waits before trying again (and the most its
    /// connection waits before redialling): how soon after remediation comes back delivery resumes.
    public var outageProbeInterval: Duration
    /// With PostgreSQL and several replicas: how long a replica's claim on the incidents it is delivering keeps
    /// other replicas off them. When a replica dies, its claimed incidents wait this long before another
    /// replica delivers them (nothing is lost: they stay in the outbox). Must exceed the time to deliver one
    /// round (`batchSize` calls); a claim that lapses early only risks a repeated, harmless `OpenRemedy`.
    public var claimLease: Duration

    /// Outbox settings.
    public init(
      remediation: Remediation?,
      backoff: Backoff,
      batchSize: Int,
      callTimeout: Duration,
      outageProbeInterval: Duration = .seconds(1),
      claimLease: Duration = .seconds(30)
    ) {
      self.claimLease = claimLease
      self.remediation = remediation
      self.backoff = backoff
      self.batchSize = batchSize
      self.callTimeout = callTimeout
      self.outageProbeInterval = outageProbeInterval
    }

    /// No remediation address, default backoff, 100 incidents per round, 10 s per call, a probe at least
    /// every second during an outage, claims held for 30 s.
    public static var defaults: Self {
      Self(
        remediation: nil,
        // 500 ms, doubling, capped at 60 s, ±20 % jitter.
        backoff: Backoff(initial: .milliseconds(500), maximum: .seconds(60), multiplier: 2, jitter: 0.2),
        batchSize: 100,
        callTimeout: .seconds(10)
      )
    }
  }

  /// The gRPC server.
  public var server: Server
  /// The database.
  public var storage: Storage
  /// Idempotency keys.
  public var idempotency: Idempotency
  /// Batching of concurrent submits.
  public var groupCommit: GroupCommit
  /// Request limits.
  public var limits: Limits
  /// Triage amounts.
  public var triage: TriagePolicy
  /// The hand-off to remediation.
  public var outbox: Outbox

  /// A configuration; parts not given take their defaults.
  public init(
    server: Server,
    storage: Storage,
    idempotency: Idempotency = .defaults,
    groupCommit: GroupCommit = .defaults,
    limits: Limits = .defaults,
    triage: TriagePolicy = .defaults,
    outbox: Outbox = .defaults
  ) {
    self.server = server
    self.storage = storage
    self.idempotency = idempotency
    self.groupCommit = groupCommit
    self.limits = limits
    self.triage = triage
    self.outbox = outbox
  }

  /// Port 7443 on 127.0.0.1 with no security set (set `server.security` before starting: TLS, or
  /// plaintext only for tests), the database at `data/intake.sqlite`, and every part's defaults.
  public static var defaults: Self {
    Self(
      server: Server(host: "127.0.0.1", port: 7443, security: nil),
      storage: Storage(databasePath: "data/intake.sqlite")
    )
  }
}
