public import Logging
public import PostgresNIO

/// Versioned schema migrations on PostgreSQL, applied at start and safe when several replicas start at once.
///
/// Each migration has a name and statements; it is recorded in `redress_migration` (service, name) in the same
/// transaction that applies it. The whole run holds a transaction-scoped advisory lock, so a second replica
/// starting at the same moment waits, then finds everything applied. Migrations are never edited once
/// released: add a new one.
public struct PostgresMigrator: Sendable {
  /// One schema change.
  public struct Migration: Sendable {
    public var name: String
    /// Run in order, in one transaction (PostgreSQL's DDL is transactional).
    public var statements: [String]

    public init(_ name: String, _ statements: [String]) {
      self.name = name
      self.statements = statements
    }
  }

  /// Whose schema this is (`intake`, `remediation`): names are unique per service.
  public var service: String
  public var migrations: [Migration]

  public init(service: String, migrations: [Migration]) {
    self.service = service
    self.migrations = migrations
  }

  /// Applies every migration not applied yet; returns the names it applied.
  @discardableResult
  public func migrate(_ client: PostgresClient, logger: Logger) async throws -> [String] {
    try await client.withTransaction(logger: logger) { connection in
      // Any constant shared by every Redress replica: one migrator at a time, across services too.
      try await connection.query("SELECT pg_advisory_xact_lock(7247851260419)", logger: logger)
      try await connection.query(
        """
        CREATE TABLE IF NOT EXISTS redress_migration (
          service TEXT NOT NULL,
          name TEXT NOT NULL,
          applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
          PRIMARY KEY (service, name)
        )
        """,
        logger: logger
      )
      var applied = Set<String>()
      let rows = try await connection.query(
        "SELECT name FROM redress_migration WHERE service = \(self.service)", logger: logger)
      for try await name in rows.decode(String.self) { applied.insert(name) }
      var ran: [String] = []
      for migration in self.migrations where !applied.contains(migration.name) {
        for statement in migration.statements {
          try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
        try await connection.query(
          "INSERT INTO redress_migration (service, name) VALUES (\(self.service), \(migration.name))", logger: logger)
        ran.append(migration.name)
      }
      return ran
    }
  }
}

/// Runs `operation`, failing with `PostgresUnavailable` when it takes longer than `limit`: postgres-nio's
/// pool waits for a connection without bound while the server is down, and an RPC must answer instead.
@discardableResult
public func withDatabaseDeadline<T: Sendable>(
  _ limit: Duration,
  _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T.self) { group in
    group.addTask { try await operation() }
    group.addTask {
      try await Task.sleep(for: limit)
      throw PostgresUnavailable(reason: "no database connection within \(limit)")
    }
    defer { group.cancelAll() }
    guard let first = try await group.next() else { throw CancellationError() }
    return first
  }
}

/// The database cannot be reached now (down, restarting, or every connection busy past the deadline); the
/// request can be retried.
public struct PostgresUnavailable: Error, CustomStringConvertible {
  public var reason: String
  public init(reason: String) { self.reason = reason }
  public var description: String { "the database is unavailable: \(self.reason)" }
}

extension PostgresClient {
  /// Runs `body` in a transaction on a pooled connection, failing with `PostgresUnavailable` after `deadline`;
  /// what `body` throws comes out as itself, after the rollback, rather than wrapped by postgres-nio.
  @discardableResult
  public func transaction<T: Sendable>(
    deadline: Duration,
    logger: Logger,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
  ) async throws -> T {
    try await withDatabaseDeadline(deadline) {
      do {
        return try await self.withTransaction(logger: logger) { connection in try await body(connection) }
      } catch let error as PostgresTransactionError {
        throw error.closureError ?? error.beginError ?? error.commitError ?? error
      }
    }
  }

  /// Runs `body` on a pooled connection (outside a transaction), failing with `PostgresUnavailable` after
  /// `deadline`.
  @discardableResult
  public func withConnection<T: Sendable>(
    deadline: Duration,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
  ) async throws -> T {
    try await withDatabaseDeadline(deadline) {
      try await self.withConnection { connection in try await body(connection) }
    }
  }
}
