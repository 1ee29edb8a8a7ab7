public import Foundation
import GRDB
public import RedressSchemas
import SwiftProtobuf

/// Webhook subscriptions and the delivery outbox on SQLite.
///
/// `webhook_delivery` is the outbox: one row per (subscription, event), written by ``appendChange`` in the
/// change's own transaction. Its `seq` orders the events of one remedy; a row is pending (1), delivered (2) or
/// dead (3), carries its attempt count and next attempt time, and a lease while a sender holds it.
extension RemediationStore: WebhookStorage {
  static let webhookSchema = """
    CREATE TABLE webhook_subscription (
      id TEXT PRIMARY KEY NOT NULL,
      tenant TEXT NOT NULL,
      url TEXT NOT NULL,
      event_mask INTEGER NOT NULL,
      client_view INTEGER NOT NULL,
      description TEXT NOT NULL,
      created_at REAL NOT NULL,
      created_by TEXT NOT NULL,
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_expires_at REAL
    );
    CREATE INDEX webhook_subscription_by_tenant ON webhook_subscription(tenant, id);
    CREATE TABLE webhook_delivery (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      subscription_id TEXT NOT NULL,
      tenant TEXT NOT NULL,
      event_id TEXT NOT NULL,
      event_type INTEGER NOT NULL,
      remedy_id TEXT NOT NULL,
      remedy_version INTEGER NOT NULL,
      incident BLOB,
      created_at REAL NOT NULL,
      state INTEGER NOT NULL,
      attempts INTEGER NOT NULL,
      next_attempt_at REAL NOT NULL,
      lease_until REAL,
      last_status INTEGER NOT NULL DEFAULT 0,
      last_error TEXT NOT NULL DEFAULT '',
      delivered_at REAL,
      trace_context TEXT
    );
    CREATE INDEX webhook_delivery_due ON webhook_delivery(next_attempt_at) WHERE state = 1;
    CREATE INDEX webhook_delivery_order ON webhook_delivery(subscription_id, remedy_id, seq) WHERE state = 1;
    CREATE INDEX webhook_delivery_by_subscription ON webhook_delivery(subscription_id, seq);
    CREATE INDEX webhook_delivery_by_age ON webhook_delivery(state, created_at);
    """

  /// Queues the events of one change for every subscription of its tenant that wants them (one statement per
  /// event type; nothing is written for a tenant without subscriptions). New rows are due at once.
  static func enqueueWebhookEvents(
    _ db: Database,
    before: Redress_V1_Remedy?,
    after remedy: Redress_V1_Remedy,
    entry: Redress_V1_TimelineEntry,
    incident: Redress_V1_Incident?,
    trace: String?
  ) throws {
    for type in WebhookEvents.types(before: before, after: remedy) {
      let incidentBytes: Data? = type == .incidentAccepted ? try incident?.serializedBytes() : nil
      try db.execute(
        sql: """
          INSERT INTO webhook_delivery (subscription_id, tenant, event_id, event_type, remedy_id, remedy_version,
                                        incident, created_at, state, attempts, next_attempt_at, trace_context)
          SELECT id, tenant, ?, ?, ?, ?, ?, ?, 1, 0, 0, ? FROM webhook_subscription
          WHERE tenant = ? AND (event_mask & ?) != 0 AND (client_view = 0 OR ?)
          """,
        arguments: [
          WebhookEvents.eventID(remedyID: remedy.id, version: remedy.version, type: type), type.rawValue, remedy.id,
          remedy.version, incidentBytes, entry.at.date.timeIntervalSince1970, trace, remedy.tenant, type.maskBit,
          Redress_V1_WebhookEventType.clientVisible.contains(type),
        ]
      )
    }
  }

  public func createWebhook(_ webhook: StoredWebhook, limit: Int) async throws -> Bool {
    try await self.writer.write { db in
      let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_subscription WHERE tenant = ?", arguments: [webhook.tenant]) ?? 0
      guard count < limit else { return false }
      try db.execute(
        sql: """
          INSERT INTO webhook_subscription (id, tenant, url, event_mask, client_view, description, created_at, created_by,
                                            secret, previous_secret, previous_expires_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
          """,
        arguments: [
          webhook.id, webhook.tenant, webhook.url, webhook.eventMask, webhook.clientView, webhook.description,
          webhook.createdAt.timeIntervalSince1970, webhook.createdBy, webhook.secret,
        ]
      )
      return true
    }
  }

  public func webhooks(tenant: String) async throws -> [StoredWebhook] {
    try await self.writer.read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM webhook_subscription WHERE tenant = ? ORDER BY id", arguments: [tenant])
        .map(Self.webhook(from:))
    }
  }

  public func webhook(id: String, tenant: String) async throws -> StoredWebhook? {
    try await self.writer.read { db in
      try Row.fetchOne(db, sql: "SELECT * FROM webhook_subscription WHERE id = ? AND tenant = ?", arguments: [id, tenant])
        .map(Self.webhook(from:))
    }
  }

  public func deleteWebhook(id: String, tenant: String) async throws -> Int64? {
    try await self.writer.write { db in
      try db.execute(sql: "DELETE FROM webhook_subscription WHERE id = ? AND tenant = ?", arguments: [id, tenant])
      guard db.changesCount == 1 else { return nil }
      let pending = try Int64.fetchOne(
        db, sql: "SELECT COUNT(*) FROM webhook_delivery WHERE subscription_id = ? AND state = 1", arguments: [id]) ?? 0
      try db.execute(sql: "DELETE FROM webhook_delivery WHERE subscription_id = ?", arguments: [id])
      return pending
    }
  }

  public func rotateWebhookSecret(id: String, tenant: String, secret: String, previousExpiresAt: Date) async throws -> StoredWebhook? {
    try await self.writer.write { db in
      try db.execute(
        sql: """
          UPDATE webhook_subscription SET previous_secret = secret, previous_expires_at = ?, secret = ?
          WHERE id = ? AND tenant = ?
          """,
        arguments: [previousExpiresAt.timeIntervalSince1970, secret, id, tenant]
      )
      return try Row.fetchOne(db, sql: "SELECT * FROM webhook_subscription WHERE id = ? AND tenant = ?", arguments: [id, tenant])
        .map(Self.webhook(from:))
    }
  }

  public func claimDueWebhookDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [DueWebhookDelivery] {
    try await self.writer.write { db in
      let seqs = try Int64.fetchAll(
        db,
        sql: """
          SELECT d.seq FROM webhook_delivery d
          WHERE d.state = 1 AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
            AND NOT EXISTS (SELECT 1 FROM webhook_delivery e WHERE e.subscription_id = d.subscription_id
                              AND e.remedy_id = d.remedy_id AND e.state = 1 AND e.seq < d.seq)
          ORDER BY d.next_attempt_at, d.seq LIMIT ?
          """,
        arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, limit]
      )
      guard !seqs.isEmpty else { return [] }
      let list = seqs.map(String.init).joined(separator: ",")
      try db.execute(
        sql: "UPDATE webhook_delivery SET lease_until = ? WHERE seq IN (\(list))", arguments: [leaseUntil.timeIntervalSince1970])
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT d.seq, d.event_id, d.event_type, d.attempts, d.incident, d.trace_context AS delivery_trace, c.entry,
                 c.remedy AS change_remedy, s.*
          FROM webhook_delivery d
          JOIN webhook_subscription s ON s.id = d.subscription_id
          JOIN remedy_change c ON c.remedy_id = d.remedy_id AND c.version = d.remedy_version
          WHERE d.seq IN (\(list)) ORDER BY d.seq
          """
      )
      return try rows.map { row in
        let entry: Data = row["entry"]
        let remedy: Data = row["change_remedy"]
        let incident: Data? = row["incident"]
        return DueWebhookDelivery(
          seq: row["seq"],
          webhook: try Self.webhook(from: row),
          eventID: row["event_id"],
          type: Redress_V1_WebhookEventType(rawValue: row["event_type"]) ?? .unspecified,
          attempts: row["attempts"],
          remedy: try Redress_V1_Remedy(serializedBytes: remedy),
          entry: try Redress_V1_TimelineEntry(serializedBytes: entry),
          incident: try incident.map { try Redress_V1_Incident(serializedBytes: $0) },
          traceContext: row["delivery_trace"]
        )
      }
    }
  }

  public func recordWebhookAttempt(seq: Int64, _ outcome: WebhookAttemptOutcome) async throws {
    try await self.writer.write { db in
      switch outcome {
      case .delivered(let status, let at):
        try db.execute(
          sql: """
            UPDATE webhook_delivery SET state = 2, attempts = attempts + 1, last_status = ?, last_error = '',
              delivered_at = ?, lease_until = NULL WHERE seq = ?
            """,
          arguments: [status, at.timeIntervalSince1970, seq])
      case .retry(let status, let error, let next):
        try db.execute(
          sql: """
            UPDATE webhook_delivery SET attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?,
              lease_until = NULL WHERE seq = ?
            """,
          arguments: [status, error, next.timeIntervalSince1970, seq])
      case .dead(let status, let error):
        try db.execute(
          sql: """
            UPDATE webhook_delivery SET state = 3, attempts = attempts + 1, last_status = ?, last_error = ?,
              lease_until = NULL WHERE seq = ?
            """,
          arguments: [status, error, seq])
      }
    }
  }

  public func nextWebhookDeliveryTime() async throws -> Date? {
    try await self.writer.read { db in
      // Only the first pending delivery of each (subscription, remedy) can become due; the others wait for it.
      try Double.fetchOne(
        db,
        sql: """
          SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.lease_until, 0))) FROM webhook_delivery d
          WHERE d.state = 1 AND NOT EXISTS (SELECT 1 FROM webhook_delivery e WHERE e.subscription_id = d.subscription_id
                                              AND e.remedy_id = d.remedy_id AND e.state = 1 AND e.seq < d.seq)
          """
      ).map { Date(timeIntervalSince1970: $0) }
    }
  }

  public func releaseWebhookLeases() async throws {
    try await self.writer.write { db in
      try db.execute(sql: "UPDATE webhook_delivery SET lease_until = NULL WHERE lease_until IS NOT NULL")
    }
  }

  public func pruneWebhookDeliveries(deliveredBefore delivered: Date, deadBefore dead: Date) async throws -> Int {
    try await self.writer.write { db in
      try db.execute(
        sql: "DELETE FROM webhook_delivery WHERE (state = 2 AND created_at < ?) OR (state = 3 AND created_at < ?)",
        arguments: [delivered.timeIntervalSince1970, dead.timeIntervalSince1970])
      return db.changesCount
    }
  }

  public func webhookDeliveries(
    webhookID: String,
    tenant: String,
    states: [Redress_V1_WebhookDeliveryState],
    beforeSeq: Int64?,
    limit: Int
  ) async throws -> [Redress_V1_WebhookDelivery]? {
    try await self.writer.read { db in
      guard
        try Bool.fetchOne(
          db, sql: "SELECT 1 FROM webhook_subscription WHERE id = ? AND tenant = ?", arguments: [webhookID, tenant]) != nil
      else { return nil }
      var sql = "SELECT * FROM webhook_delivery WHERE subscription_id = ? AND tenant = ? AND seq < ?"
      var arguments: StatementArguments = [webhookID, tenant, beforeSeq ?? Int64.max]
      if !states.isEmpty {
        sql += " AND state IN (\(states.map { _ in "?" }.joined(separator: ",")))"
        for state in states { arguments += [state.rawValue] }
      }
      sql += " ORDER BY seq DESC LIMIT ?"
      arguments += [limit]
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
        Self.delivery(
          seq: row["seq"], webhookID: row["subscription_id"], eventID: row["event_id"], type: row["event_type"],
          remedyID: row["remedy_id"], version: row["remedy_version"], state: row["state"], attempts: row["attempts"],
          lastStatus: row["last_status"], lastError: row["last_error"], createdAt: row["created_at"],
          nextAttemptAt: row["next_attempt_at"], deliveredAt: row["delivered_at"])
      }
    }
  }

  public func replayWebhookDeliveries(webhookID: String, tenant: String, seqs: [Int64]) async throws -> Int64? {
    try await self.writer.write { db in
      guard
        try Bool.fetchOne(
          db, sql: "SELECT 1 FROM webhook_subscription WHERE id = ? AND tenant = ?", arguments: [webhookID, tenant]) != nil
      else { return nil }
      let which = seqs.isEmpty ? "state = 3" : "state IN (2, 3) AND seq IN (\(seqs.map(String.init).joined(separator: ",")))"
      try db.execute(
        sql: """
          UPDATE webhook_delivery SET state = 1, attempts = 0, next_attempt_at = 0, lease_until = NULL, last_error = '',
            delivered_at = NULL
          WHERE subscription_id = ? AND \(which)
          """,
        arguments: [webhookID])
      return Int64(db.changesCount)
    }
  }

  public func webhookBacklog() async throws -> (pending: Int, dead: Int, oldestPending: Date?) {
    try await self.writer.read { db in
      let pending = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_delivery WHERE state = 1")
      let dead = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_delivery WHERE state = 3") ?? 0
      let oldest: Double? = pending?["oldest"]
      return (pending?["n"] ?? 0, dead, oldest.map { Date(timeIntervalSince1970: $0) })
    }
  }

  private static func webhook(from row: Row) throws -> StoredWebhook {
    let previousExpires: Double? = row["previous_expires_at"]
    return StoredWebhook(
      id: row["id"], tenant: row["tenant"], url: row["url"], eventMask: row["event_mask"], clientView: row["client_view"],
      description: row["description"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
      createdBy: row["created_by"], secret: row["secret"], previousSecret: row["previous_secret"],
      previousExpiresAt: previousExpires.map { Date(timeIntervalSince1970: $0) })
  }

  /// A delivery as the API shows it; shared with the PostgreSQL store.
  static func delivery(
    seq: Int64, webhookID: String, eventID: String, type: Int, remedyID: String, version: Int64, state: Int,
    attempts: Int, lastStatus: Int, lastError: String, createdAt: Double, nextAttemptAt: Double, deliveredAt: Double?
  ) -> Redress_V1_WebhookDelivery {
    .with {
      $0.id = WebhookDeliveryID.make(seq)
      $0.webhookID = webhookID
      $0.eventID = eventID
      $0.eventType = (Redress_V1_WebhookEventType(rawValue: type) ?? .unspecified).dottedName
      $0.remedyID = remedyID
      $0.remedyVersion = version
      $0.state = Redress_V1_WebhookDeliveryState(rawValue: state) ?? .unspecified
      $0.attempts = Int32(clamping: attempts)
      $0.lastHTTPStatus = Int32(clamping: lastStatus)
      $0.lastError = lastError
      $0.createdAt = .init(timeIntervalSince1970: createdAt)
      if $0.state == .pending { $0.nextAttemptAt = .init(timeIntervalSince1970: nextAttemptAt) }
      if let deliveredAt { $0.deliveredAt = .init(timeIntervalSince1970: deliveredAt) }
    }
  }
}
