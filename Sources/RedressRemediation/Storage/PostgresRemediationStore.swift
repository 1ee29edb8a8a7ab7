public import Foundation
public import Logging
public import PostgresNIO
public import RedressSchemas
public import RedressService
import SwiftProtobuf
public import Tracing

/// The remediation store on PostgreSQL, for several replicas of the service on one database.
///
/// The same tables and guarantees as ``RemediationStore`` (SQLite), with what several writers need:
/// - every change reads its remedy `FOR UPDATE`, so replicas acting on one remedy take turns, and the
///   `UPDATE` still checks the version it was computed from;
/// - a deadline fires once: the replica that locks the remedy first marks it, the next one finds it marked;
/// - opening is idempotent on (tenant, incident) across replicas (`ON CONFLICT DO NOTHING`);
/// - each change sends `NOTIFY redress_remedy, '<id> <version>'` inside its transaction (delivered on commit),
///   which ``RemedyChangeListener`` turns into live changes for the watchers on every replica.
///
/// A method that cannot get a connection within the deadline fails with `PostgresUnavailable` (answered as
/// `UNAVAILABLE`, retryable) rather than waiting while the database is down.
public struct PostgresRemediationStore: Sendable {
  let client: PostgresClient
  let logger: Logger
  let deadline: Duration
  /// Reads the request's trace context, kept with each webhook delivery a change queues.
  public var tracer: any Tracer = NoOpTracer()

  /// The channel of change notifications.
  public static let channel = "redress_remedy"

  /// A store over `client` (which must be running); call ``migrate()`` before use.
  public init(client: PostgresClient, deadline: Duration = .seconds(10), logger: Logger) {
    self.client = client
    self.deadline = deadline
    self.logger = logger
  }

  /// The schema, versioned; names follow the SQLite store's migrations.
  static let migrator = PostgresMigrator(
    service: "remediation",
    migrations: [
      .init(
        "v1: remedies, change log, groups",
        [
          """
          CREATE TABLE remedy (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            incident_id TEXT NOT NULL,
            version BIGINT NOT NULL,
            status INTEGER NOT NULL,
            stage INTEGER NOT NULL,
            owner TEXT NOT NULL,
            overdue BOOLEAN NOT NULL,
            recurrence BOOLEAN NOT NULL,
            lesson_fingerprint TEXT,
            next_deadline DOUBLE PRECISION,
            opened_at DOUBLE PRECISION NOT NULL,
            group_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            body BYTEA NOT NULL,
            UNIQUE (tenant, incident_id)
          )
          """,
          "CREATE INDEX remedy_by_tenant ON remedy (tenant, id)",
          "CREATE INDEX remedy_by_deadline ON remedy (next_deadline) WHERE next_deadline IS NOT NULL",
          "CREATE INDEX remedy_by_lesson ON remedy (tenant, lesson_fingerprint) WHERE lesson_fingerprint IS NOT NULL",
          "CREATE INDEX remedy_by_group ON remedy (tenant, group_id, id)",
          "CREATE INDEX remedy_by_customer ON remedy (tenant, customer_id, id)",
          """
          CREATE TABLE remedy_change (
            remedy_id TEXT NOT NULL REFERENCES remedy (id),
            version BIGINT NOT NULL,
            entry BYTEA NOT NULL,
            remedy BYTEA NOT NULL,
            PRIMARY KEY (remedy_id, version)
          )
          """,
          """
          CREATE TABLE remedy_group (
            tenant TEXT NOT NULL,
            group_id TEXT NOT NULL,
            source_remedy_id TEXT NOT NULL,
            investigator TEXT NOT NULL,
            investigation BYTEA NOT NULL,
            PRIMARY KEY (tenant, group_id)
          )
          """,
        ]
      ),
      .init("v2: webhooks", PostgresRemediationStore.webhookSchema),
    ]
  )

  /// One round trip to the database (the health probe).
  public func ping() async throws {
    try await self.reading { db in _ = try await db.query("SELECT 1", logger: self.logger) }
  }

  /// Applies the schema migrations not applied yet (safe when replicas start together).
  public func migrate() async throws {
    try await withDatabaseDeadline(self.deadline * 3) {
      try await Self.migrator.migrate(self.client, logger: self.logger)
    }
  }

  @discardableResult
  func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
    try await self.client.transaction(deadline: self.deadline, logger: self.logger, body)
  }

  func reading<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
    try await self.client.withConnection(deadline: self.deadline, body)
  }
}

extension PostgresRemediationStore: RemediationStorage {
  public func open(
    incident: Redress_V1_Incident,
    newID: String,
    by actor: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, alreadyOpen: Bool) {
    let trace = StoredTraceContext.current(self.tracer)
    return try await self.transaction { db in
      if let existing = try await Self.fetch(db, "SELECT body FROM remedy WHERE tenant = \(incident.tenant) AND incident_id = \(incident.id)", self.logger) {
        return (existing, true)
      }
      var remedy = playbook.open(incident: incident, id: newID, by: actor, at: now)
      guard try await self.insert(db, remedy) else {
        // Another replica opened it between our read and our insert: theirs is the remedy.
        let existing = try await Self.fetch(
          db, "SELECT body FROM remedy WHERE tenant = \(incident.tenant) AND incident_id = \(incident.id)", self.logger)
        guard let existing else { throw PostgresUnavailable(reason: "the remedy for \(incident.id) vanished while opening") }
        return (existing, true)
      }
      try await self.appendChange(db, before: nil, remedy: remedy, entry: remedy.timeline[0], incident: incident, trace: trace)
      if let shared = try await self.sharedInvestigation(db, tenant: remedy.tenant, group: remedy.groupID) {
        let context = try await self.lessonContext(db, tenant: remedy.tenant, fingerprint: shared.investigation.fingerprint, excluding: remedy.id)
        if let (investigated, entry) = playbook.applyShared(
          shared.investigation, from: shared.source, by: shared.investigator, to: remedy, at: now, context: context)
        {
          try await self.update(db, investigated, from: remedy.version)
          try await self.appendChange(db, before: remedy, remedy: investigated, entry: entry, trace: trace)
          remedy = investigated
        }
      }
      return (remedy, false)
    }
  }

  public func act(
    remedyID id: String,
    tenant: String,
    action: Redress_V1_ActRequest.OneOf_Action,
    expectedVersion: Int64,
    by actor: Identity,
    at now: Date,
    playbook: Playbook
  ) async throws -> (outcome: Playbook.Outcome, before: Redress_V1_Remedy, groupChanges: [(remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)]) {
    let trace = StoredTraceContext.current(self.tracer)
    let result = try await self.transaction { db -> ActResult in
      guard let remedy = try await Self.fetch(db, "SELECT body FROM remedy WHERE id = \(id) AND tenant = \(tenant) FOR UPDATE", self.logger) else {
        throw PlaybookError.notFound("No remedy '\(id)' in tenant \(tenant).")
      }
      var context = try await self.lessonContext(db, tenant: tenant, fingerprint: RemediationStore.fingerprint(in: action), excluding: id)
      if case .compensate = action {
        context.groupCommittedMinor = try await self.groupCommitted(
          db, tenant: tenant, group: remedy.groupID, currency: remedy.compensation.budget.currency, excluding: id)
      }
      let outcome = try playbook.apply(action, expectedVersion: expectedVersion, to: remedy, by: actor, at: now, context: context)
      var changes: [Change] = []
      if case .changed(let updated, let entry) = outcome {
        try await self.update(db, updated, from: remedy.version)
        try await self.appendChange(db, before: remedy, remedy: updated, entry: entry, trace: trace)
        if case .investigate(let request) = action, request.forGroup {
          changes = try await self.share(db, request, from: updated, by: actor.name, at: now, playbook: playbook, trace: trace)
        }
      }
      return ActResult(outcome: outcome, before: remedy, groupChanges: changes)
    }
    return (result.outcome, result.before, result.groupChanges.map { ($0.remedy, $0.entry) })
  }

  public func checkDeadlines(
    remedyID id: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)? {
    let trace = StoredTraceContext.current(self.tracer)
    let change = try await self.transaction { db -> Change? in
      guard let remedy = try await Self.fetch(db, "SELECT body FROM remedy WHERE id = \(id) FOR UPDATE", self.logger) else { return nil }
      guard let (updated, entry) = playbook.checkDeadlines(of: remedy, at: now) else {
        let next = Playbook.nextDeadline(of: remedy)?.timeIntervalSince1970
        try await db.query("UPDATE remedy SET next_deadline = \(next) WHERE id = \(id)", logger: self.logger)
        return nil
      }
      try await self.update(db, updated, from: remedy.version)
      try await self.appendChange(db, before: remedy, remedy: updated, entry: entry, trace: trace)
      return Change(remedy: updated, entry: entry)
    }
    return change.map { ($0.remedy, $0.entry) }
  }

  public func remedy(id: String, tenant: String) async throws -> Redress_V1_Remedy? {
    try await self.reading { db in
      try await Self.fetch(db, "SELECT body FROM remedy WHERE id = \(id) AND tenant = \(tenant)", self.logger)
    }
  }

  public func remedy(incidentID: String, tenant: String) async throws -> Redress_V1_Remedy? {
    try await self.reading { db in
      try await Self.fetch(db, "SELECT body FROM remedy WHERE incident_id = \(incidentID) AND tenant = \(tenant)", self.logger)
    }
  }

  public func list(tenant: String, filter: RemediationStore.Filter, afterID: String?, limit: Int) async throws -> [Redress_V1_Remedy] {
    var bindings = PostgresBindings()
    var clauses: [String] = []
    func bind(_ value: some PostgresNonThrowingEncodable) -> String {
      bindings.append(value)
      return "$\(bindings.count)"
    }
    clauses.append("tenant = \(bind(tenant))")
    if !filter.stages.isEmpty {
      clauses.append("stage IN (\(filter.stages.map { bind($0.rawValue) }.joined(separator: ",")))")
    }
    if !filter.statuses.isEmpty {
      clauses.append("status IN (\(filter.statuses.map { bind($0.rawValue) }.joined(separator: ",")))")
    }
    if !filter.owner.isEmpty { clauses.append("owner = \(bind(filter.owner))") }
    if filter.overdueOnly { clauses.append("overdue") }
    if filter.recurrencesOnly { clauses.append("recurrence") }
    if !filter.customerID.isEmpty { clauses.append("customer_id = \(bind(filter.customerID))") }
    if !filter.groupID.isEmpty { clauses.append("group_id = \(bind(filter.groupID))") }
    if let afterID { clauses.append("id < \(bind(afterID))") }
    let sql = "SELECT body FROM remedy WHERE \(clauses.joined(separator: " AND ")) ORDER BY id DESC LIMIT \(bind(limit))"
    let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
    return try await self.reading { db in try await Self.fetchAll(db, query, self.logger) }
  }

  public func group(_ groupID: String, tenant: String) async throws -> [Redress_V1_Remedy] {
    try await self.reading { db in
      try await Self.fetchAll(
        db,
        "SELECT body FROM remedy WHERE tenant = \(tenant) AND group_id = \(groupID) ORDER BY id LIMIT \(RemediationStore.maxGroupSize)",
        self.logger
      )
    }
  }

  public func changes(
    remedyID id: String,
    tenant: String,
    after version: Int64
  ) async throws -> [(entry: Redress_V1_TimelineEntry, remedy: Redress_V1_Remedy)]? {
    let changes = try await self.reading { db -> [Change]? in
      let known = try await db.query("SELECT 1 FROM remedy WHERE id = \(id) AND tenant = \(tenant)", logger: self.logger)
      var found = false
      for try await _ in known.decode(Int32.self) { found = true }
      guard found else { return nil }
      return try await self.changeRows(db, "SELECT entry, remedy FROM remedy_change WHERE remedy_id = \(id) AND version > \(version) ORDER BY version")
    }
    return changes?.map { ($0.entry, $0.remedy) }
  }

  /// One stored change by remedy and version, whatever the tenant (for the change listener, which learns
  /// of it from a notification).
  func change(remedyID id: String, version: Int64) async throws -> Redress_V1_RemedyChange? {
    let rows = try await self.reading { db in
      try await self.changeRows(db, "SELECT entry, remedy FROM remedy_change WHERE remedy_id = \(id) AND version = \(version)")
    }
    return rows.first.map { change in .with { $0.entry = change.entry; $0.remedy = change.remedy } }
  }

  public func openRemedyCounts() async throws -> [Redress_V1_Stage: (open: Int, overdue: Int)] {
    try await self.reading { db in
      let rows = try await db.query(
        """
        SELECT stage, count(*)::BIGINT, (count(*) FILTER (WHERE overdue))::BIGINT FROM remedy
        WHERE status = \(Redress_V1_RemedyStatus.open.rawValue) GROUP BY stage
        """,
        logger: self.logger
      )
      var counts: [Redress_V1_Stage: (open: Int, overdue: Int)] = [:]
      for try await (stage, open, overdue) in rows.decode((Int, Int, Int).self) {
        counts[Redress_V1_Stage(rawValue: stage) ?? .unspecified] = (open, overdue)
      }
      return counts
    }
  }

  public func remediesWithDeadline(atOrBefore now: Date) async throws -> [String] {
    try await self.reading { db in
      let rows = try await db.query(
        "SELECT id FROM remedy WHERE next_deadline IS NOT NULL AND next_deadline <= \(now.timeIntervalSince1970) ORDER BY next_deadline",
        logger: self.logger
      )
      var ids: [String] = []
      for try await id in rows.decode(String.self) { ids.append(id) }
      return ids
    }
  }
}

// MARK: - SQL helpers

extension PostgresRemediationStore {
  struct Change: Sendable {
    var remedy: Redress_V1_Remedy
    var entry: Redress_V1_TimelineEntry
  }

  struct ActResult: Sendable {
    var outcome: Playbook.Outcome
    var before: Redress_V1_Remedy
    var groupChanges: [Change]
  }

  static func fetch(_ db: PostgresConnection, _ query: PostgresQuery, _ logger: Logger) async throws -> Redress_V1_Remedy? {
    try await Self.fetchAll(db, query, logger).first
  }

  static func fetchAll(_ db: PostgresConnection, _ query: PostgresQuery, _ logger: Logger) async throws -> [Redress_V1_Remedy] {
    let rows = try await db.query(query, logger: logger)
    var remedies: [Redress_V1_Remedy] = []
    for try await body in rows.decode(Data.self) {
      remedies.append(try Redress_V1_Remedy(serializedBytes: body))
    }
    return remedies
  }

  func changeRows(_ db: PostgresConnection, _ query: PostgresQuery) async throws -> [Change] {
    let rows = try await db.query(query, logger: self.logger)
    var changes: [Change] = []
    for try await (entry, remedy) in rows.decode((Data, Data).self) {
      changes.append(Change(remedy: try Redress_V1_Remedy(serializedBytes: remedy), entry: try Redress_V1_TimelineEntry(serializedBytes: entry)))
    }
    return changes
  }

  /// Inserts a new remedy; `false` when its tenant already has one for the incident.
  func insert(_ db: PostgresConnection, _ remedy: Redress_V1_Remedy) async throws -> Bool {
    let columns = try RemediationStore.Columns(remedy)
    let rows = try await db.query(
      """
      INSERT INTO remedy (id, tenant, incident_id, opened_at, version, status, stage, owner, overdue, recurrence,
                          lesson_fingerprint, next_deadline, group_id, customer_id, body)
      VALUES (\(remedy.id), \(remedy.tenant), \(remedy.incidentID), \(remedy.openedAt.date.timeIntervalSince1970),
              \(columns.version), \(columns.status), \(columns.stage), \(columns.owner), \(columns.overdue),
              \(columns.recurrence), \(columns.lessonFingerprint), \(columns.nextDeadline), \(columns.groupID),
              \(columns.customerID), \(columns.body))
      ON CONFLICT (tenant, incident_id) DO NOTHING
      RETURNING id
      """,
      logger: self.logger
    )
    var inserted = false
    for try await _ in rows.decode(String.self) { inserted = true }
    return inserted
  }

  /// Writes `remedy` over the stored one only if that is still at `version`.
  func update(_ db: PostgresConnection, _ remedy: Redress_V1_Remedy, from version: Int64) async throws {
    let columns = try RemediationStore.Columns(remedy)
    let rows = try await db.query(
      """
      UPDATE remedy SET version = \(columns.version), status = \(columns.status), stage = \(columns.stage),
                        owner = \(columns.owner), overdue = \(columns.overdue), recurrence = \(columns.recurrence),
                        lesson_fingerprint = \(columns.lessonFingerprint), next_deadline = \(columns.nextDeadline),
                        group_id = \(columns.groupID), customer_id = \(columns.customerID), body = \(columns.body)
      WHERE id = \(remedy.id) AND version = \(version)
      RETURNING id
      """,
      logger: self.logger
    )
    var updated = false
    for try await _ in rows.decode(String.self) { updated = true }
    guard updated else {
      throw PlaybookError(
        code: .staleVersion,
        message: "Remedy \(remedy.id) changed meanwhile: get it again and retry with its current version."
      )
    }
  }

  /// Appends the change, queues its webhook events for the tenant's subscriptions, and notifies every replica
  /// once the transaction commits.
  func appendChange(
    _ db: PostgresConnection,
    before: Redress_V1_Remedy?,
    remedy: Redress_V1_Remedy,
    entry: Redress_V1_TimelineEntry,
    incident: Redress_V1_Incident? = nil,
    trace: String?
  ) async throws {
    let entryBytes: Data = try entry.serializedBytes()
    let remedyBytes: Data = try remedy.serializedBytes()
    try await db.query(
      "INSERT INTO remedy_change (remedy_id, version, entry, remedy) VALUES (\(remedy.id), \(remedy.version), \(entryBytes), \(remedyBytes))",
      logger: self.logger
    )
    try await self.enqueueWebhookEvents(db, before: before, after: remedy, entry: entry, incident: incident, trace: trace)
    try await db.query("SELECT pg_notify(\(Self.channel), \("\(remedy.id) \(remedy.version)"))", logger: self.logger)
  }

  func share(
    _ db: PostgresConnection,
    _ request: Redress_V1_Investigate,
    from source: Redress_V1_Remedy,
    by investigator: String,
    at now: Date,
    playbook: Playbook,
    trace: String?
  ) async throws -> [Change] {
    let bytes: Data = try request.serializedBytes()
    try await db.query(
      """
      INSERT INTO remedy_group (tenant, group_id, source_remedy_id, investigator, investigation)
      VALUES (\(source.tenant), \(source.groupID), \(source.id), \(investigator), \(bytes))
      ON CONFLICT (tenant, group_id) DO UPDATE SET source_remedy_id = excluded.source_remedy_id,
        investigator = excluded.investigator, investigation = excluded.investigation
      """,
      logger: self.logger
    )
    let members = try await Self.fetchAll(
      db,
      """
      SELECT body FROM remedy WHERE tenant = \(source.tenant) AND group_id = \(source.groupID) AND id != \(source.id)
        AND status = \(Redress_V1_RemedyStatus.open.rawValue) AND stage = \(Redress_V1_Stage.investigate.rawValue)
      ORDER BY id LIMIT \(RemediationStore.maxGroupSize) FOR UPDATE
      """,
      self.logger
    )
    var changes: [Change] = []
    for member in members {
      let context = try await self.lessonContext(db, tenant: member.tenant, fingerprint: request.fingerprint, excluding: member.id)
      guard let (investigated, entry) = playbook.applyShared(request, from: source.id, by: investigator, to: member, at: now, context: context)
      else { continue }
      try await self.update(db, investigated, from: member.version)
      try await self.appendChange(db, before: member, remedy: investigated, entry: entry, trace: trace)
      changes.append(Change(remedy: investigated, entry: entry))
    }
    return changes
  }

  func sharedInvestigation(
    _ db: PostgresConnection,
    tenant: String,
    group: String
  ) async throws -> (investigation: Redress_V1_Investigate, source: String, investigator: String)? {
    let rows = try await db.query(
      "SELECT source_remedy_id, investigator, investigation FROM remedy_group WHERE tenant = \(tenant) AND group_id = \(group)",
      logger: self.logger
    )
    for try await (source, investigator, bytes) in rows.decode((String, String, Data).self) {
      return (try Redress_V1_Investigate(serializedBytes: bytes), source, investigator)
    }
    return nil
  }

  func lessonContext(_ db: PostgresConnection, tenant: String, fingerprint: String?, excluding id: String) async throws -> Playbook.Context {
    var context = Playbook.Context()
    guard let fingerprint, !fingerprint.isEmpty else { return context }
    let rows = try await db.query(
      "SELECT id FROM remedy WHERE tenant = \(tenant) AND lesson_fingerprint = \(fingerprint) AND id != \(id) ORDER BY opened_at, id LIMIT 1",
      logger: self.logger
    )
    for try await earlier in rows.decode(String.self) { context.earlierLessonRemedyID = earlier }
    return context
  }

  func groupCommitted(_ db: PostgresConnection, tenant: String, group: String, currency: String, excluding id: String) async throws -> Int64 {
    let members = try await Self.fetchAll(
      db,
      "SELECT body FROM remedy WHERE tenant = \(tenant) AND group_id = \(group) AND id != \(id) LIMIT \(RemediationStore.maxGroupSize)",
      self.logger
    )
    return RemediationStore.committed(in: members, currency: currency)
  }
}

// MARK: - Import (from the embedded SQLite store)

extension PostgresRemediationStore {
  /// Copies every remedy, its change log and the groups' shared investigations from `sqlite` into this
  /// (empty, migrated) database, 200 remedies per transaction; returns how many remedies were copied.
  ///
  /// Refuses a database that already holds remedies, so it cannot merge two histories by accident. Run it with
  /// the service stopped on the SQLite side (nothing may change there meanwhile).
  public func importRemedies(from sqlite: RemediationStore) async throws -> Int {
    let existing = try await self.reading { db in
      let rows = try await db.query("SELECT count(*) FROM remedy", logger: self.logger)
      var count: Int64 = 0
      for try await value in rows.decode(Int64.self) { count = value }
      return count
    }
    guard existing == 0 else {
      throw ServiceSettings.SettingsError("the PostgreSQL database already holds \(existing) remedies: import only into an empty one")
    }
    var copied = 0
    var after: String?
    while true {
      let batch = try await sqlite.export(afterID: after, limit: 200)
      guard let last = batch.last else { break }
      let rows = batch.map { Change(remedy: $0.remedy, entry: Redress_V1_TimelineEntry()) }
      let logs = batch.map { $0.changes.map { Change(remedy: $0.remedy, entry: $0.entry) } }
      try await self.transaction { db in
        for (index, row) in rows.enumerated() {
          guard try await self.insert(db, row.remedy) else {
            throw ServiceSettings.SettingsError("remedy \(row.remedy.id) collides with one already imported (tenant, incident)")
          }
          for change in logs[index] {
            let entry: Data = try change.entry.serializedBytes()
            let state: Data = try change.remedy.serializedBytes()
            try await db.query(
              "INSERT INTO remedy_change (remedy_id, version, entry, remedy) VALUES (\(row.remedy.id), \(change.remedy.version), \(entry), \(state))",
              logger: self.logger
            )
          }
        }
      }
      copied += batch.count
      after = last.remedy.id
    }
    for group in try await sqlite.exportGroups() {
      let bytes: Data = try group.investigation.serializedBytes()
      try await self.transaction { db in
        try await db.query(
          """
          INSERT INTO remedy_group (tenant, group_id, source_remedy_id, investigator, investigation)
          VALUES (\(group.tenant), \(group.group), \(group.source), \(group.investigator), \(bytes))
          """,
          logger: self.logger
        )
      }
    }
    return copied
  }
}
