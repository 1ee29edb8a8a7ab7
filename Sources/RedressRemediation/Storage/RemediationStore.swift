public import Foundation
public import GRDB
public import RedressSchemas
public import RedressService
import SwiftProtobuf
public import Tracing

/// The remediation service's storage: one facade over a GRDB writer, all SQL in this file.
///
/// A remedy is stored as its serialized `Remedy` message plus indexed columns for the queries (tenant,
/// incident, stage, owner, overdue, recurrence, lesson fingerprint, next deadline). Every change writes the
/// new remedy, its timeline entry and a copy in the change log in one transaction, after checking the version
/// it was computed from, so watchers can resume from any version and nothing is half-written. SQLite runs
/// with WAL and `synchronous = FULL` (``SQLiteDatabase/open(at:label:)``): a method returns only once its
/// change is on disk.
public struct RemediationStore: Sendable {
  let writer: any DatabaseWriter
  /// Reads the request's trace context, kept with each webhook delivery a change queues.
  public var tracer: any Tracer = NoOpTracer()

  /// Opens (creating and migrating) the database at `path`.
  public init(path: String) throws {
    try self.init(writer: SQLiteDatabase.open(at: path, label: "redress.remediation"))
  }

  /// A store over `writer`, migrated.
  public init(writer: any DatabaseWriter) throws {
    self.writer = writer
    try Self.migrator.migrate(writer)
  }

  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1: remedies and their change log") { db in
      try db.execute(
        sql: """
          CREATE TABLE remedy (
            id TEXT PRIMARY KEY NOT NULL,
            tenant TEXT NOT NULL,
            incident_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            status INTEGER NOT NULL,
            stage INTEGER NOT NULL,
            owner TEXT NOT NULL,
            overdue INTEGER NOT NULL,
            recurrence INTEGER NOT NULL,
            lesson_fingerprint TEXT,
            next_deadline REAL,
            opened_at REAL NOT NULL,
            body BLOB NOT NULL,
            UNIQUE (tenant, incident_id)
          );
          CREATE INDEX remedy_by_tenant ON remedy(tenant, id);
          CREATE INDEX remedy_by_deadline ON remedy(next_deadline) WHERE next_deadline IS NOT NULL;
          CREATE INDEX remedy_by_lesson ON remedy(tenant, lesson_fingerprint) WHERE lesson_fingerprint IS NOT NULL;
          CREATE TABLE remedy_change (
            remedy_id TEXT NOT NULL REFERENCES remedy(id),
            version INTEGER NOT NULL,
            entry BLOB NOT NULL,
            remedy BLOB NOT NULL,
            PRIMARY KEY (remedy_id, version)
          ) WITHOUT ROWID;
          """
      )
    }
    migrator.registerMigration("v2: groups and customers") { db in
      try db.execute(
        sql: """
          ALTER TABLE remedy ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
          ALTER TABLE remedy ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
          CREATE TABLE remedy_group (
            tenant TEXT NOT NULL,
            group_id TEXT NOT NULL,
            source_remedy_id TEXT NOT NULL,
            investigator TEXT NOT NULL,
            investigation BLOB NOT NULL,
            PRIMARY KEY (tenant, group_id)
          ) WITHOUT ROWID;
          """
      )
      for row in try Row.fetchAll(db, sql: "SELECT id, body FROM remedy") {
        let body: Data = row["body"]
        var remedy = try Redress_V1_Remedy(serializedBytes: body)
        // Remedies stored before groups: their group is their own incident (v1 did not keep the root).
        if remedy.groupID.isEmpty { remedy.groupID = remedy.incidentID }
        // v1 took the fix stage's overdue flag as the fix deadline's fired mark; keep a deadline that fired
        // from firing again now that the mark has its own field.
        let fix = remedy.stages.count > Playbook.index(.fix) ? remedy.stages[Playbook.index(.fix)] : nil
        if let fix, fix.state == .active, fix.overdue, !remedy.fix.hasDoneAt,
          remedy.escalations.contains(where: { $0.kind == "overdue:fix" })
        {
          remedy.fix.deadlineFired = true
        }
        let updated: Data = try remedy.serializedBytes()
        let id: String = row["id"]
        try db.execute(
          sql: "UPDATE remedy SET group_id = ?, customer_id = ?, next_deadline = ?, body = ? WHERE id = ?",
          arguments: [
            remedy.groupID, remedy.customer.id, Playbook.nextDeadline(of: remedy)?.timeIntervalSince1970, updated, id,
          ]
        )
      }
      try db.execute(
        sql: """
          CREATE INDEX remedy_by_group ON remedy(tenant, group_id, id);
          CREATE INDEX remedy_by_customer ON remedy(tenant, customer_id, id);
          """
      )
    }
    migrator.registerMigration("v3: webhooks") { db in
      try db.execute(sql: Self.webhookSchema)
    }
    return migrator
  }

  /// The most remedies of one group that its summary and its budget check read (a group is the clients of
  /// one mistake; intake attaches reports to a root, so a group this large is a mass incident).
  public static let maxGroupSize = 10_000

  // MARK: - Writes

  /// Opens the remedy for `incident` or, when its tenant already has one for that incident, returns it.
  ///
  /// - Returns: The remedy and whether it already existed.
  public func open(
    incident: Redress_V1_Incident,
    newID: String,
    by actor: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, alreadyOpen: Bool) {
    let trace = StoredTraceContext.current(self.tracer)
    return try await self.writer.write { db in
      if let existing = try Self.fetch(db, sql: "SELECT body FROM remedy WHERE tenant = ? AND incident_id = ?", [incident.tenant, incident.id]) {
        return (existing, true)
      }
      var remedy = playbook.open(incident: incident, id: newID, by: actor, at: now)
      try Self.insert(db, remedy)
      try Self.appendChange(db, before: nil, remedy: remedy, entry: remedy.timeline[0], incident: incident, trace: trace)
      // A group whose investigation was shared: the new member starts with it.
      if let shared = try Self.sharedInvestigation(db, tenant: remedy.tenant, group: remedy.groupID) {
        let context = try Self.lessonContext(
          db, tenant: remedy.tenant, fingerprint: shared.investigation.fingerprint, excluding: remedy.id)
        if let (investigated, entry) = playbook.applyShared(
          shared.investigation, from: shared.source, by: shared.investigator, to: remedy, at: now, context: context)
        {
          try Self.update(db, investigated, from: remedy.version)
          try Self.appendChange(db, before: remedy, remedy: investigated, entry: entry, trace: trace)
          remedy = investigated
        }
      }
      return (remedy, false)
    }
  }

  /// Applies `action` to remedy `id` of `tenant` in one transaction.
  ///
  /// - Throws: ``PlaybookError`` (`notFound` for an unknown id or another tenant's remedy; the playbook's
  ///   refusals), or a database error.
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
    return try await self.writer.write { db in
      guard let remedy = try Self.fetch(db, sql: "SELECT body FROM remedy WHERE id = ? AND tenant = ?", [id, tenant]) else {
        throw PlaybookError.notFound("No remedy '\(id)' in tenant \(tenant).")
      }
      var context = try Self.lessonContext(db, tenant: tenant, fingerprint: Self.fingerprint(in: action), excluding: id)
      if case .compensate = action {
        context.groupCommittedMinor = try Self.groupCommitted(
          db, tenant: tenant, group: remedy.groupID, currency: remedy.compensation.budget.currency, excluding: id)
      }
      let outcome = try playbook.apply(
        action, expectedVersion: expectedVersion, to: remedy, by: actor, at: now, context: context
      )
      var groupChanges: [(remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)] = []
      if case .changed(let updated, let entry) = outcome {
        try Self.update(db, updated, from: remedy.version)
        try Self.appendChange(db, before: remedy, remedy: updated, entry: entry, trace: trace)
        if case .investigate(let request) = action, request.forGroup {
          groupChanges = try Self.share(db, request, from: updated, by: actor.name, at: now, playbook: playbook, trace: trace)
        }
      }
      return (outcome, remedy, groupChanges)
    }
  }

  /// Records `request` as the group's investigation (members opened later start with it) and applies it to
  /// every member still being investigated, in the caller's transaction.
  private static func share(
    _ db: Database,
    _ request: Redress_V1_Investigate,
    from source: Redress_V1_Remedy,
    by investigator: String,
    at now: Date,
    playbook: Playbook,
    trace: String?
  ) throws -> [(remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)] {
    let bytes: Data = try request.serializedBytes()
    try db.execute(
      sql: """
        INSERT INTO remedy_group (tenant, group_id, source_remedy_id, investigator, investigation) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (tenant, group_id) DO UPDATE SET source_remedy_id = excluded.source_remedy_id,
          investigator = excluded.investigator, investigation = excluded.investigation
        """,
      arguments: [source.tenant, source.groupID, source.id, investigator, bytes]
    )
    let members = try Data.fetchAll(
      db,
      sql: "SELECT body FROM remedy WHERE tenant = ? AND group_id = ? AND id != ? AND status = ? AND stage = ? LIMIT ?",
      arguments: [
        source.tenant, source.groupID, source.id, Redress_V1_RemedyStatus.open.rawValue,
        Redress_V1_Stage.investigate.rawValue, Self.maxGroupSize,
      ]
    )
    var changes: [(remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)] = []
    for body in members {
      let member = try Redress_V1_Remedy(serializedBytes: body)
      let context = try Self.lessonContext(db, tenant: member.tenant, fingerprint: request.fingerprint, excluding: member.id)
      guard
        let (investigated, entry) = playbook.applyShared(
          request, from: source.id, by: investigator, to: member, at: now, context: context)
      else { continue }
      try Self.update(db, investigated, from: member.version)
      try Self.appendChange(db, before: member, remedy: investigated, entry: entry, trace: trace)
      changes.append((investigated, entry))
    }
    return changes
  }

  private static func sharedInvestigation(
    _ db: Database,
    tenant: String,
    group: String
  ) throws -> (investigation: Redress_V1_Investigate, source: String, investigator: String)? {
    guard
      let row = try Row.fetchOne(
        db,
        sql: "SELECT source_remedy_id, investigator, investigation FROM remedy_group WHERE tenant = ? AND group_id = ?",
        arguments: [tenant, group]
      )
    else { return nil }
    let bytes: Data = row["investigation"]
    return (try Redress_V1_Investigate(serializedBytes: bytes), row["source_remedy_id"], row["investigator"])
  }

  /// The earlier remedy whose lesson has `fingerprint`, for recurrence detection.
  private static func lessonContext(
    _ db: Database,
    tenant: String,
    fingerprint: String?,
    excluding id: String
  ) throws -> Playbook.Context {
    var context = Playbook.Context()
    if let fingerprint, !fingerprint.isEmpty {
      context.earlierLessonRemedyID = try String.fetchOne(
        db,
        sql: """
          SELECT id FROM remedy WHERE tenant = ? AND lesson_fingerprint = ? AND id != ?
          ORDER BY opened_at, id LIMIT 1
          """,
        arguments: [tenant, fingerprint, id]
      )
    }
    return context
  }

  /// Compensation committed in `currency` by the other remedies of a group (saturating).
  private static func groupCommitted(
    _ db: Database,
    tenant: String,
    group: String,
    currency: String,
    excluding id: String
  ) throws -> Int64 {
    let bodies = try Data.fetchAll(
      db,
      sql: "SELECT body FROM remedy WHERE tenant = ? AND group_id = ? AND id != ? LIMIT ?",
      arguments: [tenant, group, id, Self.maxGroupSize]
    )
    return Self.committed(in: try bodies.map { try Redress_V1_Remedy(serializedBytes: $0) }, currency: currency)
  }

  /// The compensation `remedies` committed in `currency` (saturating).
  static func committed(in remedies: [Redress_V1_Remedy], currency: String) -> Int64 {
    var total: Int64 = 0
    for member in remedies where member.compensation.committed.currency == currency {
      let (sum, overflow) = total.addingReportingOverflow(member.compensation.committed.amountMinor)
      total = overflow ? .max : sum
    }
    return total
  }

  /// Marks the deadlines of remedy `id` that passed by `now`, in one transaction; `nil` when none newly passed.
  public func checkDeadlines(
    remedyID id: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)? {
    let trace = StoredTraceContext.current(self.tracer)
    return try await self.writer.write { db in
      guard let remedy = try Self.fetch(db, sql: "SELECT body FROM remedy WHERE id = ?", [id]) else { return nil }
      guard let (updated, entry) = playbook.checkDeadlines(of: remedy, at: now) else {
        // Keep the column in step with the remedy so this remedy is not picked again.
        try db.execute(
          sql: "UPDATE remedy SET next_deadline = ? WHERE id = ?",
          arguments: [Playbook.nextDeadline(of: remedy)?.timeIntervalSince1970, id]
        )
        return nil
      }
      try Self.update(db, updated, from: remedy.version)
      try Self.appendChange(db, before: remedy, remedy: updated, entry: entry, trace: trace)
      return (updated, entry)
    }
  }

  // MARK: - Reads

  /// Remedy `id` if it belongs to `tenant`.
  public func remedy(id: String, tenant: String) async throws -> Redress_V1_Remedy? {
    try await self.writer.read { db in
      try Self.fetch(db, sql: "SELECT body FROM remedy WHERE id = ? AND tenant = ?", [id, tenant])
    }
  }

  /// The remedy `tenant` opened for incident `incidentID`.
  public func remedy(incidentID: String, tenant: String) async throws -> Redress_V1_Remedy? {
    try await self.writer.read { db in
      try Self.fetch(db, sql: "SELECT body FROM remedy WHERE incident_id = ? AND tenant = ?", [incidentID, tenant])
    }
  }

  /// What ``list(tenant:filter:afterID:limit:)`` selects.
  public struct Filter: Sendable, Hashable {
    /// Remedies whose current stage is one of these; empty for any.
    public var stages: [Redress_V1_Stage] = []
    /// Remedies with one of these statuses; empty for any.
    public var statuses: [Redress_V1_RemedyStatus] = []
    /// Remedies owned by this person; empty for any.
    public var owner: String = ""
    /// Only remedies marked overdue.
    public var overdueOnly = false
    /// Only remedies flagged as a recurrence of an earlier lesson.
    public var recurrencesOnly = false
    /// Remedies of this customer id; empty for any.
    public var customerID: String = ""
    /// Remedies of this group (the root incident id); empty for any.
    public var groupID: String = ""

    /// No filter: every remedy of the tenant.
    public init() {}
  }

  /// Up to `limit` remedies of `tenant` matching `filter`, newest first, after the one with id `afterID`.
  public func list(tenant: String, filter: Filter, afterID: String?, limit: Int) async throws -> [Redress_V1_Remedy] {
    var clauses = ["tenant = ?"]
    var arguments: StatementArguments = [tenant]
    if !filter.stages.isEmpty {
      clauses.append("stage IN (\(filter.stages.map { _ in "?" }.joined(separator: ",")))")
      for stage in filter.stages { arguments += [stage.rawValue] }
    }
    if !filter.statuses.isEmpty {
      clauses.append("status IN (\(filter.statuses.map { _ in "?" }.joined(separator: ",")))")
      for status in filter.statuses { arguments += [status.rawValue] }
    }
    if !filter.owner.isEmpty {
      clauses.append("owner = ?")
      arguments += [filter.owner]
    }
    if filter.overdueOnly { clauses.append("overdue = 1") }
    if filter.recurrencesOnly { clauses.append("recurrence = 1") }
    if !filter.customerID.isEmpty {
      clauses.append("customer_id = ?")
      arguments += [filter.customerID]
    }
    if !filter.groupID.isEmpty {
      clauses.append("group_id = ?")
      arguments += [filter.groupID]
    }
    if let afterID {
      clauses.append("id < ?")
      arguments += [afterID]
    }
    arguments += [limit]
    let sql = "SELECT body FROM remedy WHERE \(clauses.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?"
    let finalArguments = arguments
    return try await self.writer.read { db in
      try Data.fetchAll(db, sql: sql, arguments: finalArguments).map { try Redress_V1_Remedy(serializedBytes: $0) }
    }
  }

  /// The remedies of group `groupID` in `tenant` (at most ``maxGroupSize``), for its summary.
  public func group(_ groupID: String, tenant: String) async throws -> [Redress_V1_Remedy] {
    try await self.writer.read { db in
      try Data.fetchAll(
        db,
        sql: "SELECT body FROM remedy WHERE tenant = ? AND group_id = ? ORDER BY id LIMIT ?",
        arguments: [tenant, groupID, Self.maxGroupSize]
      ).map { try Redress_V1_Remedy(serializedBytes: $0) }
    }
  }

  /// Every change to remedy `id` of `tenant` after `version`, in order: each entry with the remedy as it stood
  /// after it. `nil` when the remedy is unknown in the tenant.
  public func changes(
    remedyID id: String,
    tenant: String,
    after version: Int64
  ) async throws -> [(entry: Redress_V1_TimelineEntry, remedy: Redress_V1_Remedy)]? {
    try await self.writer.read { db in
      guard try Bool.fetchOne(db, sql: "SELECT 1 FROM remedy WHERE id = ? AND tenant = ?", arguments: [id, tenant]) != nil else {
        return nil
      }
      let rows = try Row.fetchAll(
        db,
        sql: "SELECT entry, remedy FROM remedy_change WHERE remedy_id = ? AND version > ? ORDER BY version",
        arguments: [id, version]
      )
      return try rows.map { row in
        let entry: Data = row["entry"]
        let remedy: Data = row["remedy"]
        return (try Redress_V1_TimelineEntry(serializedBytes: entry), try Redress_V1_Remedy(serializedBytes: remedy))
      }
    }
  }

  /// Ids of open remedies with a deadline at or before `now` that has not fired yet.
  public func remediesWithDeadline(atOrBefore now: Date) async throws -> [String] {
    try await self.writer.read { db in
      try String.fetchAll(
        db,
        sql: "SELECT id FROM remedy WHERE next_deadline IS NOT NULL AND next_deadline <= ? ORDER BY next_deadline",
        arguments: [now.timeIntervalSince1970]
      )
    }
  }

  public func openRemedyCounts() async throws -> [Redress_V1_Stage: (open: Int, overdue: Int)] {
    try await self.writer.read { db in
      var counts: [Redress_V1_Stage: (open: Int, overdue: Int)] = [:]
      let rows = try Row.fetchAll(
        db,
        sql: "SELECT stage, COUNT(*) AS open, SUM(overdue) AS overdue FROM remedy WHERE status = ? GROUP BY stage",
        arguments: [Redress_V1_RemedyStatus.open.rawValue]
      )
      for row in rows {
        counts[Redress_V1_Stage(rawValue: row["stage"]) ?? .unspecified] = (row["open"], row["overdue"] ?? 0)
      }
      return counts
    }
  }

  // MARK: - SQL helpers

  private static func fetch(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> Redress_V1_Remedy? {
    guard let body = try Data.fetchOne(db, sql: sql, arguments: arguments) else { return nil }
    return try Redress_V1_Remedy(serializedBytes: body)
  }

  /// The indexed columns of a remedy, derived from it; both backends store the same ones.
  struct Columns {
    var version: Int64
    var status: Int
    var stage: Int
    var owner: String
    var overdue: Bool
    var recurrence: Bool
    var lessonFingerprint: String?
    var nextDeadline: Double?
    var groupID: String
    var customerID: String
    var body: Data

    init(_ remedy: Redress_V1_Remedy) throws {
      self.version = remedy.version
      self.status = remedy.status.rawValue
      self.stage = remedy.currentStage.rawValue
      self.owner = remedy.owner
      self.overdue = remedy.overdue
      self.recurrence = !remedy.recurrenceOf.isEmpty
      self.lessonFingerprint = remedy.hasLesson && !remedy.lesson.fingerprint.isEmpty ? remedy.lesson.fingerprint : nil
      self.nextDeadline = Playbook.nextDeadline(of: remedy)?.timeIntervalSince1970
      self.groupID = remedy.groupID
      self.customerID = remedy.customer.id
      self.body = try remedy.serializedBytes()
    }
  }

  private static func columns(_ remedy: Redress_V1_Remedy) throws -> StatementArguments {
    let c = try Columns(remedy)
    return [
      c.version, c.status, c.stage, c.owner, c.overdue, c.recurrence, c.lessonFingerprint, c.nextDeadline, c.groupID,
      c.customerID, c.body,
    ]
  }

  private static func insert(_ db: Database, _ remedy: Redress_V1_Remedy) throws {
    var arguments: StatementArguments = [remedy.id, remedy.tenant, remedy.incidentID, remedy.openedAt.date.timeIntervalSince1970]
    arguments += try Self.columns(remedy)
    try db.execute(
      sql: """
        INSERT INTO remedy (id, tenant, incident_id, opened_at, version, status, stage, owner, overdue, recurrence,
                            lesson_fingerprint, next_deadline, group_id, customer_id, body)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: arguments
    )
  }

  /// Writes `remedy` over the stored one only if that is still at `version` (optimistic check).
  private static func update(_ db: Database, _ remedy: Redress_V1_Remedy, from version: Int64) throws {
    var arguments = try Self.columns(remedy)
    arguments += [remedy.id, version]
    try db.execute(
      sql: """
        UPDATE remedy SET version = ?, status = ?, stage = ?, owner = ?, overdue = ?, recurrence = ?,
                          lesson_fingerprint = ?, next_deadline = ?, group_id = ?, customer_id = ?, body = ?
        WHERE id = ? AND version = ?
        """,
      arguments: arguments
    )
    guard db.changesCount == 1 else {
      throw PlaybookError(
        code: .staleVersion,
        message: "Remedy \(remedy.id) changed meanwhile: get it again and retry with its current version."
      )
    }
  }

  /// Appends the change to the change log and queues its webhook events (``WebhookEvents``) for the tenant's
  /// subscriptions, in the caller's transaction: an event exists exactly when its change committed.
  private static func appendChange(
    _ db: Database,
    before: Redress_V1_Remedy?,
    remedy: Redress_V1_Remedy,
    entry: Redress_V1_TimelineEntry,
    incident: Redress_V1_Incident? = nil,
    trace: String?
  ) throws {
    let entryBytes: Data = try entry.serializedBytes()
    let remedyBytes: Data = try remedy.serializedBytes()
    try db.execute(
      sql: "INSERT INTO remedy_change (remedy_id, version, entry, remedy) VALUES (?, ?, ?, ?)",
      arguments: [remedy.id, remedy.version, entryBytes, remedyBytes]
    )
    try Self.enqueueWebhookEvents(db, before: before, after: remedy, entry: entry, incident: incident, trace: trace)
  }

  static func fingerprint(in action: Redress_V1_ActRequest.OneOf_Action) -> String? {
    switch action {
    case .investigate(let request): request.fingerprint
    case .learn(let request): request.fingerprint
    case .reinvestigate(let request): request.investigation.fingerprint
    default: nil
    }
  }
}

// MARK: - Export (moving to PostgreSQL)

extension RemediationStore {
  /// One remedy with its whole change log, for moving a database.
  public struct Exported: Sendable {
    public var remedy: Redress_V1_Remedy
    public var changes: [(entry: Redress_V1_TimelineEntry, remedy: Redress_V1_Remedy)]
  }

  /// Up to `limit` remedies after id `afterID` (in id order), each with its change log.
  public func export(afterID: String?, limit: Int) async throws -> [Exported] {
    try await self.writer.read { db in
      let bodies = try Data.fetchAll(
        db, sql: "SELECT body FROM remedy WHERE id > ? ORDER BY id LIMIT ?", arguments: [afterID ?? "", limit])
      return try bodies.map { body in
        let remedy = try Redress_V1_Remedy(serializedBytes: body)
        let rows = try Row.fetchAll(
          db, sql: "SELECT entry, remedy FROM remedy_change WHERE remedy_id = ? ORDER BY version", arguments: [remedy.id])
        let changes = try rows.map { row -> (entry: Redress_V1_TimelineEntry, remedy: Redress_V1_Remedy) in
          let entry: Data = row["entry"]
          let state: Data = row["remedy"]
          return (try Redress_V1_TimelineEntry(serializedBytes: entry), try Redress_V1_Remedy(serializedBytes: state))
        }
        return Exported(remedy: remedy, changes: changes)
      }
    }
  }

  /// Every group's shared investigation: (tenant, group, source remedy, investigator, the request).
  public func exportGroups() async throws -> [(tenant: String, group: String, source: String, investigator: String, investigation: Redress_V1_Investigate)] {
    try await self.writer.read { db in
      try Row.fetchAll(db, sql: "SELECT tenant, group_id, source_remedy_id, investigator, investigation FROM remedy_group").map { row in
        let bytes: Data = row["investigation"]
        return (row["tenant"], row["group_id"], row["source_remedy_id"], row["investigator"], try Redress_V1_Investigate(serializedBytes: bytes))
      }
    }
  }
}
