public import Foundation
public import GRDB
public import RedressSchemas

extension IntakeStore {
  /// An incident waiting to be handed to remediation.
  public struct PendingDelivery: Sendable {
    /// The incident as stored.
    public var incident: Redress_V1_Incident
    /// Failed attempts so far.
    public var attempts: Int
  }

  /// Up to `limit` incidents whose next delivery attempt is due at `now`, the longest-waiting first.
  public func dueDeliveries(now: Date, limit: Int) async throws -> [PendingDelivery] {
    let nowMS = Self.milliseconds(now)
    return try await self.writer.read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT incidents.*, outbox.attempts AS outbox_attempts FROM outbox
          JOIN incidents ON incidents.id = outbox.incident_id
          WHERE outbox.next_attempt_at_ms <= ?
          ORDER BY outbox.next_attempt_at_ms, outbox.incident_id LIMIT ?
          """,
        arguments: [nowMS, limit]
      )
      return try rows.map { row in
        PendingDelivery(incident: try Self.incident(from: row), attempts: row["outbox_attempts"])
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

  /// The number of incidents waiting for delivery, now and after every change (for operations and tests
  /// that wait for the outbox to drain without polling).
  public func pendingDeliveryCounts() -> AsyncValueObservation<Int> {
    ValueObservation
      .tracking { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
      .values(in: self.writer)
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
  }

  /// A delivery attempt failed: count it, and try again at `nextAttempt`.
  public func recordFailedDelivery(incidentID: String, attempts: Int, nextAttempt: Date, error: String) async throws {
    try await self.writer.write { db in
      try db.execute(
        sql: "UPDATE outbox SET attempts = ?, next_attempt_at_ms = ?, last_error = ? WHERE incident_id = ?",
        arguments: [attempts, Self.milliseconds(nextAttempt), error, incidentID]
      )
    }
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
