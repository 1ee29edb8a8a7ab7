public import Foundation
public import GRDB
import RedressSchemas

extension IntakeStore {
  /// Up to `limit` incidents whose next delivery attempt is due by `dueBy`, the longest-waiting first.
  /// One process owns a SQLite file, so there is no other replica to keep out: nothing is written for the
  /// claim and `now` and `leaseUntil` are not needed.
  public func claimDeliveries(dueBy: Date, now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery] {
    let nowMS = Self.milliseconds(dueBy)
    return try await self.writer.read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT incidents.*, outbox.attempts AS outbox_attempts, outbox.trace_context AS outbox_trace FROM outbox
          JOIN incidents ON incidents.id = outbox.incident_id
          WHERE outbox.next_attempt_at_ms <= ?
          ORDER BY outbox.next_attempt_at_ms, outbox.incident_id LIMIT ?
          """,
        arguments: [nowMS, limit]
      )
      return try rows.map { row in
        PendingDelivery(incident: try Self.incident(from: row), attempts: row["outbox_attempts"], traceContext: row["outbox_trace"])
      }
    }
  }

  /// When the next delivery attempt is due, or `nil` when the outbox is empty.
  public func nextDeliveryDue() async throws -> Date? {
    try await self.writer.read { db in
      try Int64.fetchOne(db, sql: "SELECT MIN(next_attempt_at_ms) FROM outbox").map {
        Date(timeIntervalSince1970: TimeInterval($0) / 1000)
      }
    }
  }

  /// How many incidents still wait for delivery.
  public func pendingDeliveryCount() async throws -> Int {
    try await self.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
  }

  public func oldestPendingReceipt() async throws -> Date? {
    let milliseconds = try await self.writer.read { db in
      try Int64.fetchOne(
        db, sql: "SELECT MIN(i.received_at_ms) FROM outbox o JOIN incidents i ON i.id = o.incident_id")
    }
    return milliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) }
  }

  /// Remediation accepted the incident: record its remedy, mark it in remediation, and drop it from the outbox.
  public func recordDelivery(incidentID: String, remedyID: String) async throws {
    try await self.writer.write { db in
      try db.execute(
        sql: "UPDATE incidents SET status = ?, remedy_id = ? WHERE id = ?",
        arguments: [Redress_V1_IncidentStatus.inRemediation.rawValue, remedyID, incidentID]
      )
      try db.execute(sql: "DELETE FROM outbox WHERE incident_id = ?", arguments: [incidentID])
    }
    self.outboxChanged.ring()
  }

  /// A delivery attempt failed: count it, and try again at `nextAttempt`.
  public func recordFailedDelivery(incidentID: String, attempts: Int, nextAttempt: Date, error: String) async throws {
    try await self.writer.write { db in
      try db.execute(
        sql: "UPDATE outbox SET attempts = ?, next_attempt_at_ms = ?, last_error = ? WHERE incident_id = ?",
        arguments: [attempts, Self.milliseconds(nextAttempt), error, incidentID]
      )
    }
    self.outboxChanged.ring()
  }

  /// Makes every waiting delivery due at `now`: remediation answered again after failures, so nothing should
  /// keep waiting out a backoff meant for an outage that is over.
  public func makeAllDeliveriesDue(now: Date) async throws {
    let nowMS = Self.milliseconds(now)
    try await self.writer.write { db in
      try db.execute(sql: "UPDATE outbox SET next_attempt_at_ms = ? WHERE next_attempt_at_ms > ?", arguments: [nowMS, nowMS])
    }
  }
}
