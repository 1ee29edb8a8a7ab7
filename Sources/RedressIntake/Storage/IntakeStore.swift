import Foundation
public import GRDB
public import RedressSchemas
public import RedressService
import SwiftProtobuf
import Synchronization

/// The intake service's one door to its SQLite database: incidents, idempotency keys, groups and the
/// hand-off outbox, with every SQL statement in this file and its extensions.
///
/// Writes of submissions go through group commit (``submit(_:)``): concurrent submissions share one
/// transaction, so one fsync acknowledges many incidents. Nothing is answered before its transaction commits.
public final class IntakeStore: IntakeStorage {
  /// How long idempotency keys are kept, and how many submissions share a transaction.
  public struct Config: Sendable, Hashable {
    /// How long idempotency keys are honoured.
    public var idempotencyRetention: Duration
    /// Most submissions in one write transaction.
    public var maxBatchSize: Int

    /// Store settings.
    public init(idempotencyRetention: Duration, maxBatchSize: Int) {
      self.idempotencyRetention = idempotencyRetention
      self.maxBatchSize = maxBatchSize
    }

    /// 7 days, 256 submissions per transaction.
    public static var defaults: Self {
      Self(
        idempotencyRetention: IntakeConfig.Idempotency.defaults.retention,
        maxBatchSize: IntakeConfig.GroupCommit.defaults.maxBatchSize
      )
    }
  }

  let writer: any DatabaseWriter
  let clock: any WallClock
  let config: Config
  let committer: GroupCommitter
  private let statistics = Mutex(CommitStatistics())
  /// Rung after every commit that stored new incidents, so the outbox delivers them at once.
  public let newIncidents: Doorbell
  public let outboxChanged = Doorbell()

  /// Opens (creating and migrating) the database at `path`.
  public convenience init(
    path: String, config: Config = .defaults, clock: any WallClock = SystemWallClock(), metrics: RedressMetrics? = nil
  ) throws {
    try self.init(writer: SQLiteDatabase.open(at: path, label: "intake"), config: config, clock: clock, metrics: metrics)
  }

  /// Uses `writer`, migrating it first.
  /// - Parameter metrics: Where group commits are recorded (batch size and commit time), if anywhere.
  public init(
    writer: any DatabaseWriter, config: Config = .defaults, clock: any WallClock = SystemWallClock(),
    metrics: RedressMetrics? = nil
  ) throws {
    precondition(config.maxBatchSize > 0, "maxBatchSize must be positive")
    self.writer = writer
    self.clock = clock
    self.config = config
    self.newIncidents = Doorbell()
    self.committer = GroupCommitter(maxBatchSize: config.maxBatchSize, metrics: metrics)
    try Self.migrator.migrate(writer)
  }

  /// Closes the database; later calls fail.
  public func close() throws {
    if let pool = self.writer as? DatabasePool {
      try pool.close()
    } else if let queue = self.writer as? DatabaseQueue {
      try queue.close()
    }
  }

  // MARK: - Migrations (named; never edited once shipped)

  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1: incidents, idempotency keys, groups, outbox") { db in
      try db.execute(
        sql: """
          CREATE TABLE incidents (
            id TEXT PRIMARY KEY NOT NULL,
            tenant TEXT NOT NULL,
            reported_by TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            category INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            status INTEGER NOT NULL,
            received_at_ms INTEGER NOT NULL,
            group_root_id TEXT REFERENCES incidents(id),
            clients_affected INTEGER NOT NULL,
            reports_in_group INTEGER NOT NULL,
            remedy_id TEXT NOT NULL DEFAULT '',
            report BLOB NOT NULL,
            triage BLOB NOT NULL
          );
          CREATE INDEX incidents_by_tenant_newest ON incidents(tenant, received_at_ms DESC, id DESC);
          CREATE INDEX incidents_by_group_root ON incidents(group_root_id);

          CREATE TABLE idempotency_keys (
            identity TEXT NOT NULL,
            key TEXT NOT NULL,
            payload_sha256 BLOB NOT NULL,
            incident_id TEXT NOT NULL REFERENCES incidents(id),
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (identity, key)
          ) WITHOUT ROWID;
          CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at_ms);

          CREATE TABLE incident_groups (
            tenant TEXT NOT NULL,
            grouping_key TEXT NOT NULL,
            root_id TEXT NOT NULL REFERENCES incidents(id),
            PRIMARY KEY (tenant, grouping_key)
          ) WITHOUT ROWID;

          CREATE TABLE outbox (
            incident_id TEXT PRIMARY KEY NOT NULL REFERENCES incidents(id),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at_ms INTEGER NOT NULL,
            last_error TEXT NOT NULL DEFAULT ''
          );
          CREATE INDEX outbox_by_due ON outbox(next_attempt_at_ms);
          """
      )
    }
    migrator.registerMigration("v2: the submit's trace context with its outbox row") { db in
      try db.execute(sql: "ALTER TABLE outbox ADD COLUMN trace_context TEXT")
    }
    return migrator
  }

  // MARK: - Submitting

  /// Stores `submissions` (or finds their earlier copies), in order, group-committed with whatever else is
  /// being submitted right now. Returns after the transaction holding them has committed.
  ///
  /// - Throws: ``IntakeError`` with code `.storage` when the transaction failed; nothing of it was stored.
  public func submit(_ submissions: [Submission]) async throws(IntakeError) -> [SubmissionOutcome] {
    if submissions.isEmpty { return [] }
    return try await self.committer.submit(submissions) { (batch) throws(IntakeError) in
      try await self.commit(batch)
    }
  }

  /// One transaction for a whole batch. GRDB's callback API is used rather than `async write` because the
  /// latter rolls back when the calling task is cancelled, and the caller here is one of many RPCs whose
  /// submissions share the batch: one client hanging up must not fail the others.
  private func commit(_ batch: [Submission]) async throws(IntakeError) -> [SubmissionOutcome] {
    let now = self.clock.now()
    let retentionMS = Int64(IncidentValidator.seconds(self.config.idempotencyRetention) * 1000)
    let result: Result<[SubmissionOutcome], any Error> = await withCheckedContinuation { continuation in
      self.writer.asyncWrite({ db in
        try Self.commit(batch, now: now, keyRetentionMS: retentionMS, in: db)
      }, completion: { _, result in
        continuation.resume(returning: result)
      })
    }
    switch result {
    case .success(let outcomes):
      self.statistics.withLock {
        $0.transactions += 1
        $0.submissions += batch.count
      }
      if outcomes.contains(where: { if case .accepted = $0 { true } else { false } }) {
        self.newIncidents.ring()
      }
      return outcomes
    case .failure(let error):
      throw IntakeError(code: .storage, message: "The incident store could not commit; nothing was stored. Retry.", cause: error)
    }
  }

  private static func commit(
    _ batch: [Submission],
    now: Date,
    keyRetentionMS: Int64,
    in db: Database
  ) throws -> [SubmissionOutcome] {
    let nowMS = Self.milliseconds(now)
    let oldestLiveKeyMS = nowMS - keyRetentionMS
    var outcomes: [SubmissionOutcome] = []
    outcomes.reserveCapacity(batch.count)
    for submission in batch {
      // Idempotency first: a retry must not create a second incident or join a group twice.
      if let row = try Row.fetchOne(
        db.cachedStatement(
          sql: """
          SELECT payload_sha256, incident_id FROM idempotency_keys
          WHERE identity = ? AND key = ? AND created_at_ms >= ?
          """
        ),
        arguments: [submission.identity.name, submission.idempotencyKey, oldestLiveKeyMS]
      ) {
        let originalID: String = row["incident_id"]
        let hash: Data = row["payload_sha256"]
        if hash == submission.payloadSHA256, let incident = try Self.fetchIncident(id: originalID, in: db) {
          outcomes.append(.replayed(incident))
        } else {
          outcomes.append(.conflict(originalIncidentID: originalID))
        }
        continue
      }

      let id = ResourceID.make(prefix: "inc", at: now)
      let tenant = submission.identity.tenant
      var groupRootID: String?
      if !submission.report.groupingKey.isEmpty {
        groupRootID = try String.fetchOne(
          db.cachedStatement(sql: "SELECT root_id FROM incident_groups WHERE tenant = ? AND grouping_key = ?"),
          arguments: [tenant, submission.report.groupingKey]
        )
      }
      let reportBytes: [UInt8] = try submission.report.serializedBytes()
      let triageBytes: [UInt8] = try submission.triage.serializedBytes()
      let isMember = groupRootID != nil
      try db.cachedStatement(
        sql: """
          INSERT INTO incidents (id, tenant, reported_by, customer_id, category, priority, status, received_at_ms,
            group_root_id, clients_affected, reports_in_group, report, triage)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """
      ).execute(
        arguments: [
          id, tenant, submission.identity.name, submission.report.customer.id,
          submission.report.category.rawValue, submission.triage.priority.rawValue,
          Redress_V1_IncidentStatus.awaitingRemediation.rawValue, nowMS,
          groupRootID, isMember ? 0 : 1, isMember ? 0 : 1, Data(reportBytes), Data(triageBytes),
        ]
      )
      if let root = groupRootID {
        // The root counts every report of its group and every distinct client among them.
        try db.cachedStatement(
          sql: """
            UPDATE incidents SET
              reports_in_group = (SELECT COUNT(*) FROM incidents WHERE id = ?1 OR group_root_id = ?1),
              clients_affected = (SELECT COUNT(DISTINCT customer_id) FROM incidents WHERE id = ?1 OR group_root_id = ?1)
            WHERE id = ?1
            """
        ).execute(arguments: [root])
      } else if !submission.report.groupingKey.isEmpty {
        try db.cachedStatement(sql: "INSERT INTO incident_groups (tenant, grouping_key, root_id) VALUES (?, ?, ?)")
          .execute(arguments: [tenant, submission.report.groupingKey, id])
      }
      // An expired key is replaced: past retention a retry is a new submission.
      try db.cachedStatement(
        sql: """
          INSERT OR REPLACE INTO idempotency_keys (identity, key, payload_sha256, incident_id, created_at_ms)
          VALUES (?, ?, ?, ?, ?)
          """
      ).execute(arguments: [submission.identity.name, submission.idempotencyKey, submission.payloadSHA256, id, nowMS])
      try db.cachedStatement(sql: "INSERT INTO outbox (incident_id, next_attempt_at_ms, trace_context) VALUES (?, ?, ?)")
        .execute(arguments: [id, nowMS, submission.traceContext])
      guard let stored = try Self.fetchIncident(id: id, in: db) else {
        throw IntakeError(code: .storage, message: "An incident just inserted could not be read back.")
      }
      outcomes.append(.accepted(stored))
    }
    return outcomes
  }

  /// How many transactions group commit has used for how many submissions.
  public var commitStatistics: CommitStatistics {
    self.statistics.withLock { $0 }
  }

  // MARK: - Reading

  /// The incident `id` if it belongs to `tenant`; `nil` otherwise (another tenant's incident is not found).
  public func incident(id: String, tenant: String) async throws -> Redress_V1_Incident? {
    try await self.writer.read { db in
      guard let incident = try Self.fetchIncident(id: id, in: db), incident.tenant == tenant else { return nil }
      return incident
    }
  }

  /// One page of `query.tenant`'s incidents, newest first, and the cursor for the next page if there is one.
  public func incidents(matching query: IncidentQuery) async throws -> (
    incidents: [Redress_V1_Incident], next: IncidentQuery.Cursor?
  ) {
    var clauses = ["tenant = ?"]
    var arguments: [DatabaseValue] = [query.tenant.databaseValue]
    func addIn(_ column: String, _ values: [Int]) {
      guard !values.isEmpty else { return }
      clauses.append("\(column) IN (\(Array(repeating: "?", count: values.count).joined(separator: ", ")))")
      arguments += values.map(\.databaseValue)
    }
    addIn("status", query.statuses.map(\.rawValue))
    addIn("priority", query.priorities.map(\.rawValue))
    addIn("category", query.categories.map(\.rawValue))
    if !query.customerID.isEmpty {
      clauses.append("customer_id = ?")
      arguments.append(query.customerID.databaseValue)
    }
    if let after = query.receivedAfter {
      clauses.append("received_at_ms >= ?")
      arguments.append(Self.milliseconds(after).databaseValue)
    }
    if let before = query.receivedBefore {
      clauses.append("received_at_ms < ?")
      arguments.append(Self.milliseconds(before).databaseValue)
    }
    if let cursor = query.after {
      clauses.append("(received_at_ms < ? OR (received_at_ms = ? AND id < ?))")
      arguments += [
        cursor.receivedAtMilliseconds.databaseValue, cursor.receivedAtMilliseconds.databaseValue,
        cursor.incidentID.databaseValue,
      ]
    }
    // One more than asked tells whether there is a next page.
    arguments.append((query.pageSize + 1).databaseValue)
    let sql = """
      SELECT * FROM incidents WHERE \(clauses.joined(separator: " AND "))
      ORDER BY received_at_ms DESC, id DESC LIMIT ?
      """
    let finalArguments = arguments
    let pageSize = query.pageSize
    return try await self.writer.read { db in
      let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(finalArguments))
      let page = rows.prefix(pageSize)
      let incidents = try page.map(Self.incident(from:))
      var next: IncidentQuery.Cursor?
      if rows.count > pageSize, let last = page.last {
        next = IncidentQuery.Cursor(receivedAtMilliseconds: last["received_at_ms"], incidentID: last["id"])
      }
      return (incidents, next)
    }
  }

  /// How many incidents the store holds across all tenants (for tests and operations).
  public func incidentCount() async throws -> Int {
    try await self.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM incidents") ?? 0 }
  }

  /// Deletes idempotency keys older than the retention; returns how many. Keys past retention are already
  /// ignored by submissions, so this only reclaims space.
  @discardableResult
  public func purgeExpiredIdempotencyKeys() async throws -> Int {
    let oldest = Self.milliseconds(self.clock.now()) - Int64(IncidentValidator.seconds(self.config.idempotencyRetention) * 1000)
    return try await self.writer.write { db in
      try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at_ms < ?", arguments: [oldest])
      return db.changesCount
    }
  }

  static func fetchIncident(id: String, in db: Database) throws -> Redress_V1_Incident? {
    guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM incidents WHERE id = ?"), arguments: [id]) else {
      return nil
    }
    return try Self.incident(from: row)
  }

  static func incident(from row: Row) throws -> Redress_V1_Incident {
    let reportData: Data = row["report"]
    let triageData: Data = row["triage"]
    let receivedMS: Int64 = row["received_at_ms"]
    let status: Int = row["status"]
    let report = try Redress_V1_IncidentReport(serializedBytes: [UInt8](reportData))
    let triage = try Redress_V1_Triage(serializedBytes: [UInt8](triageData))
    return Redress_V1_Incident.with {
      $0.id = row["id"]
      $0.tenant = row["tenant"]
      $0.reportedBy = row["reported_by"]
      $0.report = report
      $0.triage = triage
      $0.status = Redress_V1_IncidentStatus(rawValue: status) ?? .unspecified
      $0.remedyID = row["remedy_id"]
      $0.receivedAt = Google_Protobuf_Timestamp(
        seconds: receivedMS / 1000, nanos: Int32(receivedMS % 1000) * 1_000_000)
      $0.groupRootID = (row["group_root_id"] as String?) ?? ""
      $0.clientsAffected = row["clients_affected"]
      $0.reportsInGroup = row["reports_in_group"]
    }
  }

  static func milliseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
  }
}
