public import Foundation
public import RedressSchemas
public import RedressService
import Crypto

/// One validated, triaged report on its way into the store.
public struct Submission: Sendable {
  /// Who submitted it (from the authenticated connection, never the payload).
  public var identity: Identity
  /// Scoped to ``identity``.
  public var idempotencyKey: String
  /// The validated report.
  public var report: Redress_V1_IncidentReport
  /// Its triage, decided before storing.
  public var triage: Redress_V1_Triage
  /// SHA-256 of the report's serialized bytes: a retry must carry the same report.
  public var payloadSHA256: Data
  /// The submit's trace context (``StoredTraceContext``), kept with the outbox row so the hand-off to
  /// remediation joins the submit's trace; `nil` when not traced.
  public var traceContext: String?

  /// A submission of `report`, hashing it for the idempotency check.
  public init(
    identity: Identity,
    idempotencyKey: String,
    report: Redress_V1_IncidentReport,
    triage: Redress_V1_Triage
  ) throws {
    self.identity = identity
    self.idempotencyKey = idempotencyKey
    self.report = report
    self.triage = triage
    // IncidentReport has no map fields, so its binary form is deterministic: equal reports hash equally.
    let bytes: [UInt8] = try report.serializedBytes()
    self.payloadSHA256 = Data(SHA256.hash(data: bytes))
  }
}

/// What became of one ``Submission``.
public enum SubmissionOutcome: Sendable, Hashable {
  /// Stored now.
  case accepted(Redress_V1_Incident)
  /// The identity used this idempotency key before with the same report: the incident stored then.
  case replayed(Redress_V1_Incident)
  /// The identity used this idempotency key before with a different report.
  case conflict(originalIncidentID: String)
}
