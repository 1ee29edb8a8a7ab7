public import Foundation
import GRDB
public import RedressSchemas

/// Reading a whole SQLite database out, page by page, for `redress-intake --import-sqlite` (moving to
/// PostgreSQL). Each page continues after the last row of the previous one (keyset paging), so pages stay
/// cheap however large the tables are.
extension IntakeStore {
  /// A stored idempotency key.
  public struct ExportedKey: Sendable {
    public var identity: String
    public var key: String
    public var payloadSHA256: Data
    public var incidentID: String
    public var createdAtMilliseconds: Int64
  }

  /// A group's root.
  public struct ExportedGroup: Sendable {
    public var tenant: String
    public var groupingKey: String
    public var rootID: String
  }

  /// An incident still waiting for delivery.
  public struct ExportedDelivery: Sendable {
    public var incidentID: String
    public var attempts: Int
    public var nextAttemptAtMilliseconds: Int64
    public var lastError: String
  }

  /// Up to `limit` incidents after `afterID`, by id.
  public func exportIncidents(afterID: String?, limit: Int) async throws -> [Redress_V1_Incident] {
    try await self.writer.read { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM incidents WHERE id > ? ORDER BY id LIMIT ?", arguments: [afterID ?? "", limit]
      ).map(Self.incident(from:))
    }
  }

  /// Up to `limit` idempotency keys after `after` (identity, key), in that order.
  public func exportKeys(after: ExportedKey?, limit: Int) async throws -> [ExportedKey] {
    try await self.writer.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT * FROM idempotency_keys WHERE (identity, key) > (?, ?) ORDER BY identity, key LIMIT ?
          """,
        arguments: [after?.identity ?? "", after?.key ?? "", limit]
      ).map {
        ExportedKey(
          identity: $0["identity"], key: $0["key"], payloadSHA256: $0["payload_sha256"], incidentID: $0["incident_id"],
          createdAtMilliseconds: $0["created_at_ms"])
      }
    }
  }

  /// Up to `limit` groups after `after` (tenant, grouping key), in that order.
  public func exportGroups(after: ExportedGroup?, limit: Int) async throws -> [ExportedGroup] {
    try await self.writer.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT * FROM incident_groups WHERE (tenant, grouping_key) > (?, ?) ORDER BY tenant, grouping_key LIMIT ?
          """,
        arguments: [after?.tenant ?? "", after?.groupingKey ?? "", limit]
      ).map { ExportedGroup(tenant: $0["tenant"], groupingKey: $0["grouping_key"], rootID: $0["root_id"]) }
    }
  }

  /// Up to `limit` waiting deliveries after `afterID`, by incident id.
  public func exportDeliveries(afterID: String?, limit: Int) async throws -> [ExportedDelivery] {
    try await self.writer.read { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM outbox WHERE incident_id > ? ORDER BY incident_id LIMIT ?", arguments: [afterID ?? "", limit]
      ).map {
        ExportedDelivery(
          incidentID: $0["incident_id"], attempts: $0["attempts"], nextAttemptAtMilliseconds: $0["next_attempt_at_ms"],
          lastError: $0["last_error"])
      }
    }
  }
}
