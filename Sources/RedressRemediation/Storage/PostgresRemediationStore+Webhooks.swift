public import Foundation
import PostgresNIO
public import RedressSchemas
import SwiftProtobuf

/// Webhook subscriptions and the delivery outbox on PostgreSQL: the SQLite store's tables and rules, with
/// what several replicas need. A replica claims due deliveries with `FOR UPDATE SKIP LOCKED` and a lease, so
/// two replicas never send one delivery at once; a delivery whose replica died is claimed again when its
/// lease ends.
extension PostgresRemediationStore: WebhookStorage {
  static let webhookSchema = [
    """
    CREATE TABLE webhook_subscription (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      url TEXT NOT NULL,
      event_mask BIGINT NOT NULL,
      client_view BOOLEAN NOT NULL,
      description TEXT NOT NULL,
      created_at DOUBLE PRECISION NOT NULL,
      created_by TEXT NOT NULL,
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_expires_at DOUBLE PRECISION
    )
    """,
    "CREATE INDEX webhook_subscription_by_tenant ON webhook_subscription (tenant, id)",
    """
    CREATE TABLE webhook_delivery (
      seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      subscription_id TEXT NOT NULL,
      tenant TEXT NOT NULL,
      event_id TEXT NOT NULL,
      event_type INTEGER NOT NULL,
      remedy_id TEXT NOT NULL,
      remedy_version BIGINT NOT NULL,
      incident BYTEA,
      created_at DOUBLE PRECISION NOT NULL,
      state INTEGER NOT NULL,
      attempts INTEGER NOT NULL,
      next_attempt_at DOUBLE PRECISION NOT NULL,
      lease_until DOUBLE PRECISION,
      last_status INTEGER NOT NULL DEFAULT 0,
      last_error TEXT NOT NULL DEFAULT '',
      delivered_at DOUBLE PRECISION,
      trace_context TEXT
    )
    """,
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at) WHERE state = 1",
    "CREATE INDEX webhook_delivery_order ON webhook_delivery (subscription_id, remedy_id, seq) WHERE state = 1",
    "CREATE INDEX webhook_delivery_by_subscription ON webhook_delivery (subscription_id, seq)",
    "CREATE INDEX webhook_delivery_by_age ON webhook_delivery (state, created_at)",
  ]

  private static let subscriptionColumns =
    "id, tenant, url, event_mask, client_view, description, created_at, created_by, secret, previous_secret, previous_expires_at"
  private typealias SubscriptionRow = (String, String, String, Int64, Bool, String, Double, String, String, String?, Double?)

  private static func webhook(_ row: SubscriptionRow) -> StoredWebhook {
    StoredWebhook(
      id: row.0, tenant: row.1, url: row.2, eventMask: row.3, clientView: row.4, description: row.5,
      createdAt: Date(timeIntervalSince1970: row.6), createdBy: row.7, secret: row.8, previousSecret: row.9,
      previousExpiresAt: row.10.map { Date(timeIntervalSince1970: $0) })
  }

  private func subscriptions(_ db: PostgresConnection, _ query: PostgresQuery) async throws -> [StoredWebhook] {
    var webhooks: [StoredWebhook] = []
    for try await row in try await db.query(query, logger: self.logger).decode(SubscriptionRow.self) {
      webhooks.append(Self.webhook(row))
    }
    return webhooks
  }

  /// Queues the events of one change for the tenant's subscriptions in one statement (none for a change that
  /// raises no event).
  func enqueueWebhookEvents(
    _ db: PostgresConnection,
    before: Redress_V1_Remedy?,
    after remedy: Redress_V1_Remedy,
    entry: Redress_V1_TimelineEntry,
    incident: Redress_V1_Incident?,
    trace: String?
  ) async throws {
    let types = WebhookEvents.types(before: before, after: remedy)
    guard !types.isEmpty else { return }
    let ids = types.map { WebhookEvents.eventID(remedyID: remedy.id, version: remedy.version, type: $0) }
    let numbers = types.map { Int32($0.rawValue) }
    let visible = types.map { Redress_V1_WebhookEventType.clientVisible.contains($0) }
    let incidentBytes: Data? = types.contains(.incidentAccepted) ? try incident?.serializedBytes() : nil
    let accepted = Int32(Redress_V1_WebhookEventType.incidentAccepted.rawValue)
    try await db.query(
      """
      INSERT INTO webhook_delivery (subscription_id, tenant, event_id, event_type, remedy_id, remedy_version, incident,
                                    created_at, state, attempts, next_attempt_at, trace_context)
      SELECT s.id, s.tenant, e.event_id, e.event_type, \(remedy.id), \(remedy.version),
             CASE WHEN e.event_type = \(accepted) THEN \(incidentBytes)::BYTEA ELSE NULL END,
             \(entry.at.date.timeIntervalSince1970), 1, 0, 0, \(trace)::TEXT
      FROM webhook_subscription s
      CROSS JOIN unnest(\(ids)::TEXT[], \(numbers)::INTEGER[], \(visible)::BOOLEAN[]) WITH ORDINALITY
        AS e(event_id, event_type, visible, position)
      WHERE s.tenant = \(remedy.tenant) AND (s.event_mask & (1::BIGINT << e.event_type)) != 0
        AND (NOT s.client_view OR e.visible)
      ORDER BY e.position, s.id
      """,
      logger: self.logger
    )
  }

  public func createWebhook(_ webhook: StoredWebhook, limit: Int) async throws -> Bool {
    try await self.transaction { db in
      // Serializes creations in one tenant so two at once cannot both pass the limit.
      try await db.query("SELECT pg_advisory_xact_lock(hashtext(\("webhooks:" + webhook.tenant)))", logger: self.logger)
      var count = 0
      for try await n in try await db.query(
        "SELECT count(*)::BIGINT FROM webhook_subscription WHERE tenant = \(webhook.tenant)", logger: self.logger
      ).decode(Int.self) { count = n }
      guard count < limit else { return false }
      try await db.query(
        """
        INSERT INTO webhook_subscription (id, tenant, url, event_mask, client_view, description, created_at, created_by,
                                          secret, previous_secret, previous_expires_at)
        VALUES (\(webhook.id), \(webhook.tenant), \(webhook.url), \(webhook.eventMask), \(webhook.clientView),
                \(webhook.description), \(webhook.createdAt.timeIntervalSince1970), \(webhook.createdBy), \(webhook.secret),
                NULL, NULL)
        """,
        logger: self.logger
      )
      return true
    }
  }

  public func webhooks(tenant: String) async throws -> [StoredWebhook] {
    try await self.reading { db in
      try await self.subscriptions(
        db, "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscription WHERE tenant = \(tenant) ORDER BY id")
    }
  }

  public func webhook(id: String, tenant: String) async throws -> StoredWebhook? {
    try await self.reading { db in
      try await self.subscriptions(
        db, "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscription WHERE id = \(id) AND tenant = \(tenant)"
      ).first
    }
  }

  public func deleteWebhook(id: String, tenant: String) async throws -> Int64? {
    try await self.transaction { db in
      var deleted = false
      for try await _ in try await db.query(
        "DELETE FROM webhook_subscription WHERE id = \(id) AND tenant = \(tenant) RETURNING id", logger: self.logger
      ).decode(String.self) { deleted = true }
      guard deleted else { return nil }
      var pending: Int64 = 0
      for try await n in try await db.query(
        "SELECT count(*)::BIGINT FROM webhook_delivery WHERE subscription_id = \(id) AND state = 1", logger: self.logger
      ).decode(Int64.self) { pending = n }
      try await db.query("DELETE FROM webhook_delivery WHERE subscription_id = \(id)", logger: self.logger)
      return pending
    }
  }

  public func rotateWebhookSecret(id: String, tenant: String, secret: String, previousExpiresAt: Date) async throws -> StoredWebhook? {
    try await self.transaction { db in
      try await self.subscriptions(
        db,
        """
        UPDATE webhook_subscription SET previous_secret = secret,
          previous_expires_at = \(previousExpiresAt.timeIntervalSince1970), secret = \(secret)
        WHERE id = \(id) AND tenant = \(tenant)
        RETURNING \(unescaped: Self.subscriptionColumns)
        """
      ).first
    }
  }

  public func claimDueWebhookDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [DueWebhookDelivery] {
    try await self.transaction { db in
      let at = now.timeIntervalSince1970
      let rows = try await db.query(
        """
        WITH due AS (
          SELECT d.seq FROM webhook_delivery d
          WHERE d.state = 1 AND d.next_attempt_at <= \(at) AND (d.lease_until IS NULL OR d.lease_until <= \(at))
            AND NOT EXISTS (SELECT 1 FROM webhook_delivery e WHERE e.subscription_id = d.subscription_id
                              AND e.remedy_id = d.remedy_id AND e.state = 1 AND e.seq < d.seq)
          ORDER BY d.next_attempt_at, d.seq LIMIT \(limit)
          FOR UPDATE SKIP LOCKED
        ), claimed AS (
          UPDATE webhook_delivery w SET lease_until = \(leaseUntil.timeIntervalSince1970) FROM due WHERE w.seq = due.seq
          RETURNING w.seq, w.subscription_id, w.event_id, w.event_type, w.attempts, w.incident, w.remedy_id, w.remedy_version,
                    w.trace_context
        )
        SELECT claimed.seq, claimed.subscription_id, claimed.event_id, claimed.event_type, claimed.attempts,
               claimed.incident, c.entry, c.remedy, claimed.trace_context
        FROM claimed JOIN remedy_change c ON c.remedy_id = claimed.remedy_id AND c.version = claimed.remedy_version
        ORDER BY claimed.seq
        """,
        logger: self.logger
      )
      var claimed: [(Int64, String, String, Int, Int, Data?, Data, Data, String?)] = []
      for try await row in rows.decode((Int64, String, String, Int, Int, Data?, Data, Data, String?).self) { claimed.append(row) }
      guard !claimed.isEmpty else { return [] }
      let ids = Array(Set(claimed.map(\.1)))
      let webhooks = try await self.subscriptions(
        db, "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscription WHERE id = ANY(\(ids)::TEXT[])")
      let byID = Dictionary(webhooks.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
      return try claimed.compactMap { row -> DueWebhookDelivery? in
        guard let webhook = byID[row.1] else { return nil }
        return DueWebhookDelivery(
          seq: row.0, webhook: webhook, eventID: row.2, type: Redress_V1_WebhookEventType(rawValue: row.3) ?? .unspecified,
          attempts: row.4, remedy: try Redress_V1_Remedy(serializedBytes: row.7),
          entry: try Redress_V1_TimelineEntry(serializedBytes: row.6),
          incident: try row.5.map { try Redress_V1_Incident(serializedBytes: $0) }, traceContext: row.8)
      }
    }
  }

  public func recordWebhookAttempt(seq: Int64, _ outcome: WebhookAttemptOutcome) async throws {
    try await self.transaction { db in
      switch outcome {
      case .delivered(let status, let at):
        try await db.query(
          """
          UPDATE webhook_delivery SET state = 2, attempts = attempts + 1, last_status = \(status), last_error = '',
            delivered_at = \(at.timeIntervalSince1970), lease_until = NULL WHERE seq = \(seq)
          """, logger: self.logger)
      case .retry(let status, let error, let next):
        try await db.query(
          """
          UPDATE webhook_delivery SET attempts = attempts + 1, last_status = \(status), last_error = \(error),
            next_attempt_at = \(next.timeIntervalSince1970), lease_until = NULL WHERE seq = \(seq)
          """, logger: self.logger)
      case .dead(let status, let error):
        try await db.query(
          """
          UPDATE webhook_delivery SET state = 3, attempts = attempts + 1, last_status = \(status), last_error = \(error),
            lease_until = NULL WHERE seq = \(seq)
          """, logger: self.logger)
      }
    }
  }

  public func nextWebhookDeliveryTime() async throws -> Date? {
    try await self.reading { db in
      var next: Double?
      for try await value in try await db.query(
        // Only the first pending delivery of each (subscription, remedy) can become due.
        """
        SELECT min(greatest(d.next_attempt_at, coalesce(d.lease_until, 0))) FROM webhook_delivery d
        WHERE d.state = 1 AND NOT EXISTS (SELECT 1 FROM webhook_delivery e WHERE e.subscription_id = d.subscription_id
                                            AND e.remedy_id = d.remedy_id AND e.state = 1 AND e.seq < d.seq)
        """,
        logger: self.logger
      ).decode(Double?.self) { next = value }
      return next.map { Date(timeIntervalSince1970: $0) }
    }
  }

  /// Leases are how replicas share the outbox, so one replica starting must not clear the others': a no-op.
  public func releaseWebhookLeases() async throws {}

  public func pruneWebhookDeliveries(deliveredBefore delivered: Date, deadBefore dead: Date) async throws -> Int {
    try await self.transaction { db in
      var count = 0
      for try await _ in try await db.query(
        """
        DELETE FROM webhook_delivery
        WHERE (state = 2 AND created_at < \(delivered.timeIntervalSince1970)) OR (state = 3 AND created_at < \(dead.timeIntervalSince1970))
        RETURNING seq
        """, logger: self.logger
      ).decode(Int64.self) { count += 1 }
      return count
    }
  }

  public func webhookDeliveries(
    webhookID: String,
    tenant: String,
    states: [Redress_V1_WebhookDeliveryState],
    beforeSeq: Int64?,
    limit: Int
  ) async throws -> [Redress_V1_WebhookDelivery]? {
    try await self.reading { db in
      var known = false
      for try await _ in try await db.query(
        "SELECT 1 FROM webhook_subscription WHERE id = \(webhookID) AND tenant = \(tenant)", logger: self.logger
      ).decode(Int32.self) { known = true }
      guard known else { return nil }
      let stateNumbers = states.map { Int32($0.rawValue) }
      let rows = try await db.query(
        """
        SELECT seq, subscription_id, event_id, event_type, remedy_id, remedy_version, state, attempts, last_status,
               last_error, created_at, next_attempt_at, delivered_at
        FROM webhook_delivery
        WHERE subscription_id = \(webhookID) AND tenant = \(tenant) AND seq < \(beforeSeq ?? Int64.max)
          AND (cardinality(\(stateNumbers)::INTEGER[]) = 0 OR state = ANY(\(stateNumbers)::INTEGER[]))
        ORDER BY seq DESC LIMIT \(limit)
        """,
        logger: self.logger
      )
      var deliveries: [Redress_V1_WebhookDelivery] = []
      for try await row in rows.decode((Int64, String, String, Int, String, Int64, Int, Int, Int, String, Double, Double, Double?).self) {
        deliveries.append(
          RemediationStore.delivery(
            seq: row.0, webhookID: row.1, eventID: row.2, type: row.3, remedyID: row.4, version: row.5, state: row.6,
            attempts: row.7, lastStatus: row.8, lastError: row.9, createdAt: row.10, nextAttemptAt: row.11,
            deliveredAt: row.12))
      }
      return deliveries
    }
  }

  public func replayWebhookDeliveries(webhookID: String, tenant: String, seqs: [Int64]) async throws -> Int64? {
    try await self.transaction { db in
      var known = false
      for try await _ in try await db.query(
        "SELECT 1 FROM webhook_subscription WHERE id = \(webhookID) AND tenant = \(tenant)", logger: self.logger
      ).decode(Int32.self) { known = true }
      guard known else { return nil }
      var count: Int64 = 0
      for try await _ in try await db.query(
        """
        UPDATE webhook_delivery SET state = 1, attempts = 0, next_attempt_at = 0, lease_until = NULL, last_error = '',
          delivered_at = NULL
        WHERE subscription_id = \(webhookID)
          AND ((cardinality(\(seqs)::BIGINT[]) = 0 AND state = 3) OR (state IN (2, 3) AND seq = ANY(\(seqs)::BIGINT[])))
        RETURNING seq
        """, logger: self.logger
      ).decode(Int64.self) { count += 1 }
      return count
    }
  }

  public func webhookBacklog() async throws -> (pending: Int, dead: Int, oldestPending: Date?) {
    try await self.reading { db in
      var result: (pending: Int, dead: Int, oldestPending: Date?) = (0, 0, nil)
      for try await (pending, dead, oldest) in try await db.query(
        """
        SELECT (count(*) FILTER (WHERE state = 1))::BIGINT, (count(*) FILTER (WHERE state = 3))::BIGINT,
               min(created_at) FILTER (WHERE state = 1)
        FROM webhook_delivery WHERE state IN (1, 3)
        """, logger: self.logger
      ).decode((Int, Int, Double?).self) {
        result = (pending, dead, oldest.map { Date(timeIntervalSince1970: $0) })
      }
      return result
    }
  }
}
