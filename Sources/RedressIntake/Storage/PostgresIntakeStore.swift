public import Foundation
public import Logging
public import PostgresNIO
public import RedressSchemas
public import RedressService
import SwiftProtobuf
import Synchronization

/// The intake store on PostgreSQL, for several replicas of intake on one database.
///
/// The same tables and guarantees as ``IntakeStore`` (SQLite), with what several writers need:
/// - **Group commit per replica**: concurrent submissions on one replica share a transaction, as on SQLite.
/// - **One incident per idempotency key across replicas**: a batch first claims its keys with
///   `INSERT … ON CONFLICT`; a replica that sends the same key at the same moment waits on the unique index
///   until the first transaction commits, then finds the key taken and answers with that incident (or rolls
///   back, and the key is free again). Keys are claimed in (identity, key) order, then groups in (tenant,
///   grouping key) order, then group roots in id order, so two batches lock in the same order and do not
///   deadlock each other; if PostgreSQL still breaks a deadlock or a serialization conflict, the whole batch
///   runs again (nothing was answered yet).
/// - **One root per group across replicas**: the group row is claimed the same way; a member locks its root
///   before recounting it, so counts include every committed member.
/// - **The outbox is claimed**: a replica takes due rows with `FOR UPDATE SKIP LOCKED` and a lease; another
///   replica skips them until the lease lapses (its holder died) and then takes them over.
/// - Every commit that stores incidents sends `NOTIFY redress_incident`; ``PostgresListener`` rings every
///   replica's ``newIncidents`` so an incident stored by a replica that dies at once is still delivered.
///
/// A method that cannot get a connection within the deadline fails as unavailable (retryable) instead of
/// waiting while the database is down.
public final class PostgresIntakeStore: IntakeStorage {
  let client: PostgresClient
  let logger: Logger
  let clock: any WallClock
  let config: IntakeStore.Config
  /// How long a database call may wait for a connection.
  public let deadline: Duration
  /// Names this replica's outbox claims; new on every start, so a restarted replica waits out its old leases.
  let replicaID: String
  private let committer: GroupCommitter
  private let statistics = Mutex(CommitStatistics())
  public let newIncidents = Doorbell()
  public let outboxChanged = Doorbell()

  /// The channel of new-incident notifications.
  public static let channel = "redress_incident"

  /// A store over `client` (which must be running); call ``migrate()`` before use.
  public init(
    client: PostgresClient,
    config: IntakeStore.Config = .defaults,
    clock: any WallClock = SystemWallClock(),
    deadline: Duration = .seconds(10),
    metrics: RedressMetrics? = nil,
    logger: Logger
  ) {
    precondition(config.maxBatchSize > 0, "maxBatchSize must be positive")
    self.client = client
    self.config = config
    self.clock = clock
    self.deadline = deadline
    self.logger = logger
    self.replicaID = UUID().uuidString
    self.committer = GroupCommitter(maxBatchSize: config.maxBatchSize, metrics: metrics)
  }

  /// The schema, versioned; names follow the SQLite store's migrations.
  static let migrator = PostgresMigrator(
    service: "intake",
    migrations: [
      .init(
        "v1: incidents, idempotency keys, groups, outbox",
        [
          """
          CREATE TABLE incident (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            reported_by TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            category INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            status INTEGER NOT NULL,
            received_at_ms BIGINT NOT NULL,
            group_root_id TEXT REFERENCES incident (id) DEFERRABLE INITIALLY DEFERRED,
            clients_affected INTEGER NOT NULL,
            reports_in_group INTEGER NOT NULL,
            remedy_id TEXT NOT NULL DEFAULT '',
            report BYTEA NOT NULL,
            triage BYTEA NOT NULL
          )
          """,
          "CREATE INDEX incident_by_tenant_newest ON incident (tenant, received_at_ms DESC, id DESC)",
          "CREATE INDEX incident_by_group_root ON incident (group_root_id) WHERE group_root_id IS NOT NULL",
          // The key and group rows are written before their incident in the same transaction: checked at commit.
          """
          CREATE TABLE idempotency_key (
            identity TEXT NOT NULL,
            key TEXT NOT NULL,
            payload_sha256 BYTEA NOT NULL,
            incident_id TEXT NOT NULL REFERENCES incident (id) DEFERRABLE INITIALLY DEFERRED,
            created_at_ms BIGINT NOT NULL,
            PRIMARY KEY (identity, key)
          )
          """,
          "CREATE INDEX idempotency_key_by_age ON idempotency_key (created_at_ms)",
          """
          CREATE TABLE incident_group (
            tenant TEXT NOT NULL,
            grouping_key TEXT NOT NULL,
            root_id TEXT NOT NULL REFERENCES incident (id) DEFERRABLE INITIALLY DEFERRED,
            PRIMARY KEY (tenant, grouping_key)
          )
          """,
          """
          CREATE TABLE outbox (
            incident_id TEXT PRIMARY KEY REFERENCES incident (id),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at_ms BIGINT NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            claimed_by TEXT NOT NULL DEFAULT '',
            claimed_until_ms BIGINT NOT NULL DEFAULT 0
          )
          """,
          "CREATE INDEX outbox_by_due ON outbox (next_attempt_at_ms, incident_id)",
        ]
      ),
      .init("v2: the submit's trace context with its outbox row", ["ALTER TABLE outbox ADD COLUMN trace_context TEXT"]),
    ]
  )

  /// Applies the schema migrations not applied yet (safe when replicas start together).
  public func migrate() async throws {
    try await withDatabaseDeadline(self.deadline * 3) {
      try await Self.migrator.migrate(self.client, logger: self.logger)
    }
  }

  /// One round trip to the database (the health probe).
  public func ping() async throws {
    try await self.client.withConnection(deadline: self.deadline) { db in _ = try await db.query("SELECT 1", logger: self.logger) }
  }

  /// Nothing to do: the pool belongs to the application's service group, which shuts it down.
  public func close() async throws {}

  public var commitStatistics: CommitStatistics {
    self.statistics.withLock { $0 }
  }

  // MARK: - Submitting

  public func submit(_ submissions: [Submission]) async throws(IntakeError) -> [SubmissionOutcome] {
    if submissions.isEmpty { return [] }
    return try await self.committer.submit(submissions) { (batch) throws(IntakeError) in
      try await self.commit(batch)
    }
  }

  /// How often a batch is run again after PostgreSQL broke a deadlock or a serialization conflict.
  static let maxRetries = 3

  /// One transaction for a whole batch, run in a task of its own: the leader is one of many RPCs whose
  /// submissions share the batch, and its client hanging up (cancelling its task) must not roll back the others.
  private func commit(_ batch: [Submission]) async throws(IntakeError) -> [SubmissionOutcome] {
    let now = self.clock.now()
    let retentionMS = Int64(IncidentValidator.seconds(self.config.idempotencyRetention) * 1000)
    let task = Task { () -> Result<[SubmissionOutcome], any Error> in
      var retries = 0
      while true {
        do {
          let outcomes = try await self.client.transaction(deadline: self.deadline, logger: self.logger) { db in
            try await self.commit(batch, now: now, keyRetentionMS: retentionMS, in: db)
          }
          self.statistics.withLock {
            $0.transactions += 1
            $0.submissions += batch.count
            $0.retries += retries
          }
          return .success(outcomes)
        } catch let error as PSQLError where retries < Self.maxRetries && Self.isRetryable(error) {
          retries += 1
          self.logger.debug("a batch met another replica's and runs again", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
        } catch {
          return .failure(error)
        }
      }
    }
    switch await task.value {
    case .success(let outcomes):
      if outcomes.contains(where: { if case .accepted = $0 { true } else { false } }) {
        self.newIncidents.ring()
      }
      return outcomes
    case .failure(let error as PostgresUnavailable):
      // The deadline passed: the transaction may still be under way and may yet commit, so "nothing was stored"
      // would not be known to be true. The key makes the retry safe either way.
      throw IntakeError(
        code: .storage,
        message: "The incident store did not confirm the commit in time. Retry with the same idempotency key: the retry returns the incident if it was stored, and stores it if not.",
        cause: error)
    case .failure(let error):
      throw IntakeError(code: .storage, message: "The incident store could not commit; nothing was stored. Retry.", cause: error)
    }
  }

  /// Deadlock detected, serialization failure, or a unique violation met while racing another replica
  /// (the batch's own checks make the retry find the winner's row).
  static func isRetryable(_ error: PSQLError) -> Bool {
    ["40001", "40P01", "23505"].contains(error.serverInfo?[.sqlState] ?? "")
  }

  private enum Claim {
    /// This submission's key was free (or expired): it creates an incident.
    case new
    /// Another transaction stored this key before.
    case earlier(incidentID: String, payloadSHA256: Data)
    /// An earlier submission in this batch has the same key.
    case sameBatch(Int)
  }

  private func commit(
    _ batch: [Submission],
    now: Date,
    keyRetentionMS: Int64,
    in db: PostgresConnection
  ) async throws -> [SubmissionOutcome] {
    let nowMS = IntakeStore.milliseconds(now)
    let oldestLiveKeyMS = nowMS - keyRetentionMS
    let ids = batch.map { _ in ResourceID.make(prefix: "inc", at: now) }

    // 1. Claim the idempotency keys, in key order, with one statement for the batch (unnest over column arrays,
    //    inserted in that order). A key another open transaction holds makes the insert wait for it; an expired
    //    key is taken over. The keys it did not claim were used before: one more statement reads them.
    var claims = [Claim](repeating: .new, count: batch.count)
    var firstWithKey: [KeyOfSubmission: Int] = [:]
    var claiming: [Int] = []
    let byKey = batch.indices.sorted { KeyOfSubmission(batch[$0], $0) < KeyOfSubmission(batch[$1], $1) }
    for index in byKey {
      let key = KeyOfSubmission(batch[index], 0)
      if let first = firstWithKey[key] {
        claims[index] = .sameBatch(first)
      } else {
        firstWithKey[key] = index
        claiming.append(index)
      }
    }
    let identities = claiming.map { batch[$0].identity.name }
    let keys = claiming.map { batch[$0].idempotencyKey }
    let hashes = claiming.map { ByteBuffer(bytes: batch[$0].payloadSHA256) }
    let claimIDs = claiming.map { ids[$0] }
    let claimedRows = try await db.query(
      """
      INSERT INTO idempotency_key (identity, key, payload_sha256, incident_id, created_at_ms)
      SELECT identity, key, payload_sha256, incident_id, \(nowMS)
      FROM unnest(\(identities)::TEXT[], \(keys)::TEXT[], \(hashes)::BYTEA[], \(claimIDs)::TEXT[]) WITH ORDINALITY
        AS k(identity, key, payload_sha256, incident_id, position)
      ORDER BY position
      ON CONFLICT (identity, key) DO UPDATE SET payload_sha256 = excluded.payload_sha256,
        incident_id = excluded.incident_id, created_at_ms = excluded.created_at_ms
      WHERE idempotency_key.created_at_ms < \(oldestLiveKeyMS)
      RETURNING incident_id
      """,
      logger: self.logger
    )
    var claimedIDs: Set<String> = []
    for try await id in claimedRows.decode(String.self) { claimedIDs.insert(id) }
    let taken = claiming.filter { !claimedIDs.contains(ids[$0]) }
    if !taken.isEmpty {
      let existing = try await db.query(
        """
        SELECT k.identity, k.key, k.incident_id, k.payload_sha256 FROM idempotency_key k
        JOIN unnest(\(taken.map { batch[$0].identity.name })::TEXT[], \(taken.map { batch[$0].idempotencyKey })::TEXT[])
          AS t(identity, key) ON k.identity = t.identity AND k.key = t.key
        """,
        logger: self.logger
      )
      var stored: [KeyOfSubmission: (String, Data)] = [:]
      for try await (identity, key, incidentID, hash) in existing.decode((String, String, String, Data).self) {
        stored[KeyOfSubmission(identity: identity, key: key)] = (incidentID, hash)
      }
      for index in taken {
        guard let (incidentID, hash) = stored[KeyOfSubmission(batch[index], 0)] else {
          throw IntakeError(code: .storage, message: "An idempotency key could be neither claimed nor found.")
        }
        claims[index] = .earlier(incidentID: incidentID, payloadSHA256: hash)
      }
    }

    // 2. Claim the groups of new incidents, in (tenant, grouping key) order: the first report of a group is its
    //    root, on whichever replica it arrives.
    var rootOf = [String?](repeating: nil, count: batch.count)
    var rootOfGroup: [GroupOfSubmission: String] = [:]
    let grouped = batch.indices.filter { index in
      if case .new = claims[index] { return !batch[index].report.groupingKey.isEmpty }
      return false
    }
    for index in grouped.sorted(by: { GroupOfSubmission(batch[$0], $0) < GroupOfSubmission(batch[$1], $1) }) {
      let group = GroupOfSubmission(batch[index], 0)
      if let root = rootOfGroup[group] {
        rootOf[index] = root
        continue
      }
      let claimed = try await db.query(
        """
        INSERT INTO incident_group (tenant, grouping_key, root_id) VALUES (\(group.tenant), \(group.groupingKey), \(ids[index]))
        ON CONFLICT (tenant, grouping_key) DO NOTHING RETURNING root_id
        """,
        logger: self.logger
      )
      if try await Self.hasRow(claimed) {
        rootOfGroup[group] = ids[index]
        continue
      }
      let existing = try await db.query(
        "SELECT root_id FROM incident_group WHERE tenant = \(group.tenant) AND grouping_key = \(group.groupingKey)",
        logger: self.logger
      )
      for try await root in existing.decode(String.self) {
        rootOf[index] = root
        rootOfGroup[group] = root
      }
    }

    // 3. The new incidents and their outbox rows, in batch order: one statement for all the incidents and one
    //    for all their outbox rows (unnest over column arrays), not two round trips per incident.
    var accepted: [Int: Redress_V1_Incident] = [:]
    var rows = NewIncidentRows()
    for index in batch.indices {
      guard case .new = claims[index] else { continue }
      let submission = batch[index]
      let isMember = rootOf[index] != nil
      let incident = Redress_V1_Incident.with {
        $0.id = ids[index]
        $0.tenant = submission.identity.tenant
        $0.reportedBy = submission.identity.name
        $0.report = submission.report
        $0.triage = submission.triage
        $0.status = .awaitingRemediation
        $0.receivedAt = Google_Protobuf_Timestamp(seconds: nowMS / 1000, nanos: Int32(nowMS % 1000) * 1_000_000)
        $0.groupRootID = rootOf[index] ?? ""
        $0.clientsAffected = isMember ? 0 : 1
        $0.reportsInGroup = isMember ? 0 : 1
      }
      try rows.append(incident, submission)
      accepted[index] = incident
    }
    if !rows.ids.isEmpty {
      // postgres-nio encodes arrays of non-optional values: an empty string stands for NULL (no id is empty).
      try await db.query(
        """
        INSERT INTO incident (id, tenant, reported_by, customer_id, category, priority, status, received_at_ms,
          group_root_id, clients_affected, reports_in_group, report, triage)
        SELECT id, tenant, reported_by, customer_id, category, priority, status, \(nowMS), NULLIF(group_root_id, ''),
          clients_affected, reports_in_group, report, triage
        FROM unnest(\(rows.ids)::TEXT[], \(rows.tenants)::TEXT[], \(rows.reportedBy)::TEXT[], \(rows.customerIDs)::TEXT[],
                    \(rows.categories)::INTEGER[], \(rows.priorities)::INTEGER[], \(rows.statuses)::INTEGER[],
                    \(rows.groupRoots)::TEXT[], \(rows.clientsAffected)::INTEGER[], \(rows.reportsInGroup)::INTEGER[],
                    \(rows.reports)::BYTEA[], \(rows.triages)::BYTEA[]) WITH ORDINALITY
          AS r(id, tenant, reported_by, customer_id, category, priority, status, group_root_id, clients_affected,
               reports_in_group, report, triage, position)
        ORDER BY position
        """,
        logger: self.logger
      )
      try await db.query(
        """
        INSERT INTO outbox (incident_id, next_attempt_at_ms, trace_context)
        SELECT id, \(nowMS), NULLIF(trace, '')
        FROM unnest(\(rows.ids)::TEXT[], \(rows.traces)::TEXT[]) WITH ORDINALITY AS r(id, trace, position)
        ORDER BY position
        """,
        logger: self.logger
      )
    }

    // 4. Recount the roots that gained members, locking each first (in id order) so that the count, a new
    //    statement, sees every member another replica committed before it.
    let roots = Set(rootOf.compactMap { $0 }).sorted()
    if !roots.isEmpty {
      _ = try await Self.hasRow(
        db.query("SELECT id FROM incident WHERE id = ANY(\(roots)) ORDER BY id FOR UPDATE", logger: self.logger))
      try await db.query(
        """
        UPDATE incident AS root SET
          reports_in_group = counts.reports, clients_affected = counts.clients
        FROM (
          SELECT r.id, COUNT(*) AS reports, COUNT(DISTINCT m.customer_id) AS clients
          FROM incident r JOIN incident m ON m.id = r.id OR m.group_root_id = r.id
          WHERE r.id = ANY(\(roots)) GROUP BY r.id
        ) AS counts
        WHERE root.id = counts.id
        """,
        logger: self.logger
      )
    }
    if !accepted.isEmpty {
      _ = try await Self.hasRow(db.query("SELECT pg_notify(\(Self.channel), '')", logger: self.logger))
    }

    // 5. The answers, in batch order.
    var outcomes: [SubmissionOutcome] = []
    outcomes.reserveCapacity(batch.count)
    for index in batch.indices {
      switch claims[index] {
      case .new:
        outcomes.append(.accepted(accepted[index]!))
      case .earlier(let incidentID, let hash):
        if hash == batch[index].payloadSHA256, let incident = try await self.fetchIncident(id: incidentID, in: db) {
          outcomes.append(.replayed(incident))
        } else {
          outcomes.append(.conflict(originalIncidentID: incidentID))
        }
      case .sameBatch(let first):
        switch outcomes[first] {
        case .accepted(let incident), .replayed(let incident):
          // What the first one stored under the key decides, as if this one had come in a later transaction.
          let stored = hashOfClaim(claims[first], batch[first])
          outcomes.append(stored == batch[index].payloadSHA256 ? .replayed(incident) : .conflict(originalIncidentID: incident.id))
        case .conflict(let original):
          outcomes.append(.conflict(originalIncidentID: original))
        }
      }
    }
    return outcomes
  }

  /// The columns of a batch's new incidents, as arrays for one `unnest` insert.
  private struct NewIncidentRows {
    var ids: [String] = []
    var tenants: [String] = []
    var reportedBy: [String] = []
    var customerIDs: [String] = []
    var categories: [Int32] = []
    var priorities: [Int32] = []
    var statuses: [Int32] = []
    /// "" for an incident that is not a group member.
    var groupRoots: [String] = []
    var clientsAffected: [Int32] = []
    var reportsInGroup: [Int32] = []
    var reports: [ByteBuffer] = []
    var triages: [ByteBuffer] = []
    /// "" when the submit was not traced.
    var traces: [String] = []

    mutating func append(_ incident: Redress_V1_Incident, _ submission: Submission) throws {
      self.ids.append(incident.id)
      self.tenants.append(incident.tenant)
      self.reportedBy.append(incident.reportedBy)
      self.customerIDs.append(submission.report.customer.id)
      self.categories.append(Int32(submission.report.category.rawValue))
      self.priorities.append(Int32(submission.triage.priority.rawValue))
      self.statuses.append(Int32(incident.status.rawValue))
      self.groupRoots.append(incident.groupRootID)
      self.clientsAffected.append(incident.clientsAffected)
      self.reportsInGroup.append(incident.reportsInGroup)
      self.reports.append(ByteBuffer(bytes: try submission.report.serializedBytes() as [UInt8]))
      self.triages.append(ByteBuffer(bytes: try submission.triage.serializedBytes() as [UInt8]))
      self.traces.append(submission.traceContext ?? "")
    }
  }

  /// The report hash stored under a claimed key.
  private func hashOfClaim(_ claim: Claim, _ submission: Submission) -> Data {
    if case .earlier(_, let hash) = claim { return hash }
    return submission.payloadSHA256
  }

  private static func hasRow(_ rows: PostgresRowSequence) async throws -> Bool {
    var found = false
    for try await _ in rows { found = true }
    return found
  }

  // MARK: - Reading

  /// The columns an incident is built from, in ``incident(from:)``'s order, each after `prefix`.
  static func columns(_ prefix: String = "") -> String {
    [
      "id", "tenant", "reported_by", "status", "received_at_ms", "group_root_id", "clients_affected",
      "reports_in_group", "remedy_id", "report", "triage",
    ].map { prefix + $0 }.joined(separator: ", ")
  }

  public func incident(id: String, tenant: String) async throws -> Redress_V1_Incident? {
    try await self.client.withConnection(deadline: self.deadline) { db in
      guard let incident = try await self.fetchIncident(id: id, in: db), incident.tenant == tenant else { return nil }
      return incident
    }
  }

  public func incidents(matching query: IncidentQuery) async throws -> (
    incidents: [Redress_V1_Incident], next: IncidentQuery.Cursor?
  ) {
    var bindings = PostgresBindings()
    func bind(_ value: some PostgresNonThrowingEncodable) -> String {
      bindings.append(value)
      return "$\(bindings.count)"
    }
    var clauses = ["tenant = \(bind(query.tenant))"]
    func addIn(_ column: String, _ values: [Int]) {
      guard !values.isEmpty else { return }
      clauses.append("\(column) IN (\(values.map { bind($0) }.joined(separator: ", ")))")
    }
    addIn("status", query.statuses.map(\.rawValue))
    addIn("priority", query.priorities.map(\.rawValue))
    addIn("category", query.categories.map(\.rawValue))
    if !query.customerID.isEmpty { clauses.append("customer_id = \(bind(query.customerID))") }
    if let after = query.receivedAfter { clauses.append("received_at_ms >= \(bind(IntakeStore.milliseconds(after)))") }
    if let before = query.receivedBefore { clauses.append("received_at_ms < \(bind(IntakeStore.milliseconds(before)))") }
    if let cursor = query.after {
      let at = bind(cursor.receivedAtMilliseconds)
      clauses.append("(received_at_ms < \(at) OR (received_at_ms = \(at) AND id < \(bind(cursor.incidentID))))")
    }
    // One more than asked tells whether there is a next page.
    let sql = """
      SELECT \(Self.columns()) FROM incident WHERE \(clauses.joined(separator: " AND "))
      ORDER BY received_at_ms DESC, id DESC LIMIT \(bind(query.pageSize + 1))
      """
    let statement = PostgresQuery(unsafeSQL: sql, binds: bindings)
    let rows = try await self.client.withConnection(deadline: self.deadline) { db in
      try await self.fetchIncidents(statement, in: db)
    }
    let page = Array(rows.prefix(query.pageSize))
    var next: IncidentQuery.Cursor?
    if rows.count > query.pageSize, let last = page.last {
      next = IncidentQuery.Cursor(receivedAtMilliseconds: Self.milliseconds(last.receivedAt), incidentID: last.id)
    }
    return (page, next)
  }

  public func incidentCount() async throws -> Int {
    try await self.count("SELECT count(*) FROM incident")
  }

  @discardableResult
  public func purgeExpiredIdempotencyKeys() async throws -> Int {
    let oldest = IntakeStore.milliseconds(self.clock.now()) - Int64(IncidentValidator.seconds(self.config.idempotencyRetention) * 1000)
    return try await self.client.withConnection(deadline: self.deadline) { db in
      let rows = try await db.query("DELETE FROM idempotency_key WHERE created_at_ms < \(oldest) RETURNING 1", logger: self.logger)
      var deleted = 0
      for try await _ in rows { deleted += 1 }
      return deleted
    }
  }

  func count(_ query: PostgresQuery) async throws -> Int {
    try await self.client.withConnection(deadline: self.deadline) { db in
      let rows = try await db.query(query, logger: self.logger)
      var count = 0
      for try await value in rows.decode(Int.self) { count = value }
      return count
    }
  }

  func fetchIncident(id: String, in db: PostgresConnection) async throws -> Redress_V1_Incident? {
    try await self.fetchIncidents("SELECT \(unescaped: Self.columns()) FROM incident WHERE id = \(id)", in: db).first
  }

  func fetchIncidents(_ query: PostgresQuery, in db: PostgresConnection) async throws -> [Redress_V1_Incident] {
    let rows = try await db.query(query, logger: self.logger)
    var incidents: [Redress_V1_Incident] = []
    for try await row in rows {
      incidents.append(try Self.incident(from: row))
    }
    return incidents
  }

  /// An incident from a row of ``columns`` (and possibly more after them).
  static func incident(from row: PostgresRow) throws -> Redress_V1_Incident {
    let cells = row.makeRandomAccess()
    let id = try cells[0].decode(String.self)
    let tenant = try cells[1].decode(String.self)
    let reportedBy = try cells[2].decode(String.self)
    let status = try cells[3].decode(Int.self)
    let receivedMS = try cells[4].decode(Int64.self)
    let groupRootID = try cells[5].decode(String?.self)
    let clientsAffected = try cells[6].decode(Int32.self)
    let reportsInGroup = try cells[7].decode(Int32.self)
    let remedyID = try cells[8].decode(String.self)
    let report = try Redress_V1_IncidentReport(serializedBytes: try cells[9].decode(Data.self))
    let triage = try Redress_V1_Triage(serializedBytes: try cells[10].decode(Data.self))
    return Redress_V1_Incident.with {
      $0.id = id
      $0.tenant = tenant
      $0.reportedBy = reportedBy
      $0.report = report
      $0.triage = triage
      $0.status = Redress_V1_IncidentStatus(rawValue: status) ?? .unspecified
      $0.remedyID = remedyID
      $0.receivedAt = Google_Protobuf_Timestamp(seconds: receivedMS / 1000, nanos: Int32(receivedMS % 1000) * 1_000_000)
      $0.groupRootID = groupRootID ?? ""
      $0.clientsAffected = clientsAffected
      $0.reportsInGroup = reportsInGroup
    }
  }

  static func milliseconds(_ timestamp: Google_Protobuf_Timestamp) -> Int64 {
    timestamp.seconds * 1000 + Int64(timestamp.nanos / 1_000_000)
  }
}

// MARK: - The outbox

extension PostgresIntakeStore {
  public func claimDeliveries(dueBy: Date, now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery] {
    let dueMS = IntakeStore.milliseconds(dueBy)
    let nowMS = IntakeStore.milliseconds(now)
    let untilMS = IntakeStore.milliseconds(leaseUntil)
    let replica = self.replicaID
    return try await self.client.withConnection(deadline: self.deadline) { db in
      let rows = try await db.query(
        """
        WITH claimed AS (
          UPDATE outbox SET claimed_by = \(replica), claimed_until_ms = \(untilMS)
          WHERE incident_id IN (
            SELECT incident_id FROM outbox
            WHERE next_attempt_at_ms <= \(dueMS) AND (claimed_until_ms <= \(nowMS) OR claimed_by = \(replica))
            ORDER BY next_attempt_at_ms, incident_id LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
          )
          RETURNING incident_id, attempts, next_attempt_at_ms, trace_context
        )
        SELECT \(unescaped: Self.columns("i.")), claimed.attempts, claimed.trace_context
        FROM claimed JOIN incident i ON i.id = claimed.incident_id
        ORDER BY claimed.next_attempt_at_ms, claimed.incident_id
        """,
        logger: self.logger
      )
      var deliveries: [PendingDelivery] = []
      for try await row in rows {
        let columns = row.makeRandomAccess()
        let attempts = try columns[11].decode(Int.self)
        let trace = try columns[12].decode(String?.self)
        deliveries.append(PendingDelivery(incident: try Self.incident(from: row), attempts: attempts, traceContext: trace))
      }
      return deliveries
    }
  }

  public func nextDeliveryDue() async throws -> Date? {
    let replica = self.replicaID
    return try await self.client.withConnection(deadline: self.deadline) { db in
      // Another replica's claim holds its rows until the lease ends; this replica's own claims do not.
      let rows = try await db.query(
        """
        SELECT MIN(GREATEST(next_attempt_at_ms, CASE WHEN claimed_by = \(replica) THEN 0 ELSE claimed_until_ms END))
        FROM outbox
        """,
        logger: self.logger
      )
      var due: Date?
      for try await value in rows.decode(Int64?.self) {
        due = value.map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) }
      }
      return due
    }
  }

  public func pendingDeliveryCount() async throws -> Int {
    try await self.count("SELECT count(*) FROM outbox")
  }

  public func oldestPendingReceipt() async throws -> Date? {
    let milliseconds = try await self.client.withConnection(deadline: self.deadline) { db -> Int64? in
      let rows = try await db.query(
        "SELECT min(i.received_at_ms) FROM outbox o JOIN incident i ON i.id = o.incident_id", logger: self.logger)
      var oldest: Int64?
      for try await value in rows.decode(Int64?.self) { oldest = value }
      return oldest
    }
    return milliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) }
  }

  public func recordDelivery(incidentID: String, remedyID: String) async throws {
    try await self.client.transaction(deadline: self.deadline, logger: self.logger) { db in
      try await db.query(
        """
        UPDATE incident SET status = \(Redress_V1_IncidentStatus.inRemediation.rawValue), remedy_id = \(remedyID)
        WHERE id = \(incidentID)
        """,
        logger: self.logger
      )
      try await db.query("DELETE FROM outbox WHERE incident_id = \(incidentID)", logger: self.logger)
    }
    self.outboxChanged.ring()
  }

  public func recordFailedDelivery(incidentID: String, attempts: Int, nextAttempt: Date, error: String) async throws {
    let nextMS = IntakeStore.milliseconds(nextAttempt)
    try await self.client.withConnection(deadline: self.deadline) { db in
      try await db.query(
        """
        UPDATE outbox SET attempts = \(attempts), next_attempt_at_ms = \(nextMS), last_error = \(error),
          claimed_by = '', claimed_until_ms = 0
        WHERE incident_id = \(incidentID)
        """,
        logger: self.logger
      )
    }
    self.outboxChanged.ring()
  }

  public func makeAllDeliveriesDue(now: Date) async throws {
    let nowMS = IntakeStore.milliseconds(now)
    try await self.client.withConnection(deadline: self.deadline) { db in
      try await db.query(
        "UPDATE outbox SET next_attempt_at_ms = \(nowMS) WHERE next_attempt_at_ms > \(nowMS)", logger: self.logger)
    }
  }
}

/// Sort and identity key of a submission's idempotency key; `index` orders equal keys by batch position.
private struct KeyOfSubmission: Hashable, Comparable {
  var identity: String
  var key: String
  var index: Int

  init(_ submission: Submission, _ index: Int) {
    self.identity = submission.identity.name
    self.key = submission.idempotencyKey
    self.index = index
  }

  /// A stored key (index 0, as the batch's lookups use).
  init(identity: String, key: String) {
    self.identity = identity
    self.key = key
    self.index = 0
  }

  static func < (lhs: Self, rhs: Self) -> Bool {
    (lhs.identity, lhs.key, lhs.index) < (rhs.identity, rhs.key, rhs.index)
  }
}

/// Sort and identity key of a submission's group; `index` orders equal groups by batch position.
private struct GroupOfSubmission: Hashable, Comparable {
  var tenant: String
  var groupingKey: String
  var index: Int

  init(_ submission: Submission, _ index: Int) {
    self.tenant = submission.identity.tenant
    self.groupingKey = submission.report.groupingKey
    self.index = index
  }

  static func < (lhs: Self, rhs: Self) -> Bool {
    (lhs.tenant, lhs.groupingKey, lhs.index) < (rhs.tenant, rhs.groupingKey, rhs.index)
  }
}

// MARK: - Import (from the embedded SQLite store)

extension PostgresIntakeStore {
  /// Copies every incident, idempotency key, group and waiting delivery from `sqlite` into this (empty,
  /// migrated) database, in one transaction: an import that fails leaves nothing behind. Returns how many
  /// incidents were copied.
  ///
  /// Refuses a database that already holds incidents, so it cannot merge two histories by accident. Run it with
  /// the service stopped on the SQLite side (nothing may change there meanwhile).
  public func importIncidents(from sqlite: IntakeStore) async throws -> Int {
    let existing = try await self.incidentCount()
    guard existing == 0 else {
      throw ServiceSettings.SettingsError("the PostgreSQL database already holds \(existing) incidents: import only into an empty one")
    }
    let page = 500
    // No deadline on the whole copy (it may be long); each statement still fails fast if the server goes away.
    return try await self.client.withTransaction(logger: self.logger) { db in
      var copied = 0
      var afterID: String?
      while true {
        let incidents = try await sqlite.exportIncidents(afterID: afterID, limit: page)
        guard let last = incidents.last else { break }
        for incident in incidents {
          let report: Data = try incident.report.serializedBytes()
          let triage: Data = try incident.triage.serializedBytes()
          let root: String? = incident.groupRootID.isEmpty ? nil : incident.groupRootID
          try await db.query(
            """
            INSERT INTO incident (id, tenant, reported_by, customer_id, category, priority, status, received_at_ms,
              group_root_id, clients_affected, reports_in_group, remedy_id, report, triage)
            VALUES (\(incident.id), \(incident.tenant), \(incident.reportedBy), \(incident.report.customer.id),
              \(incident.report.category.rawValue), \(incident.triage.priority.rawValue), \(incident.status.rawValue),
              \(Self.milliseconds(incident.receivedAt)), \(root), \(incident.clientsAffected), \(incident.reportsInGroup),
              \(incident.remedyID), \(report), \(triage))
            """,
            logger: self.logger
          )
        }
        copied += incidents.count
        afterID = last.id
      }
      var afterKey: IntakeStore.ExportedKey?
      while true {
        let keys = try await sqlite.exportKeys(after: afterKey, limit: page)
        guard let last = keys.last else { break }
        for key in keys {
          try await db.query(
            """
            INSERT INTO idempotency_key (identity, key, payload_sha256, incident_id, created_at_ms)
            VALUES (\(key.identity), \(key.key), \(key.payloadSHA256), \(key.incidentID), \(key.createdAtMilliseconds))
            """,
            logger: self.logger
          )
        }
        afterKey = last
      }
      var afterGroup: IntakeStore.ExportedGroup?
      while true {
        let groups = try await sqlite.exportGroups(after: afterGroup, limit: page)
        guard let last = groups.last else { break }
        for group in groups {
          try await db.query(
            "INSERT INTO incident_group (tenant, grouping_key, root_id) VALUES (\(group.tenant), \(group.groupingKey), \(group.rootID))",
            logger: self.logger
          )
        }
        afterGroup = last
      }
      var afterDelivery: String?
      while true {
        let deliveries = try await sqlite.exportDeliveries(afterID: afterDelivery, limit: page)
        guard let last = deliveries.last else { break }
        for delivery in deliveries {
          try await db.query(
            """
            INSERT INTO outbox (incident_id, attempts, next_attempt_at_ms, last_error)
            VALUES (\(delivery.incidentID), \(delivery.attempts), \(delivery.nextAttemptAtMilliseconds), \(delivery.lastError))
            """,
            logger: self.logger
          )
        }
        afterDelivery = last.incidentID
      }
      return copied
    }
  }
}
