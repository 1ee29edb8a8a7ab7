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
