public import Foundation
public import RedressSchemas

/// What the intake service needs from its database. ``IntakeStore`` (SQLite, the embedded default, one
/// replica) and ``PostgresIntakeStore`` (several replicas on one PostgreSQL) implement it with the same
/// guarantees: a submission is answered only after the transaction holding it committed; an idempotency key
/// creates one incident however many times (and through however many replicas) it is sent; the outbox row is
/// written in the same transaction as its incident.
public protocol IntakeStorage: Sendable {
  /// Rung after every commit that stored new incidents (on any replica, with PostgreSQL), so the outbox
  /// delivers them at once.
  var newIncidents: Doorbell { get }

  /// Rung after this replica recorded a delivery or a failed attempt (for operations and tests that wait for
  /// the outbox to drain without polling).
  var outboxChanged: Doorbell { get }

  /// How many transactions group commit has used for how many submissions, on this replica.
  var commitStatistics: CommitStatistics { get }

  /// Stores `submissions` (or finds their earlier copies), in order, group-committed with whatever else this
  /// replica is submitting right now. Returns after the transaction holding them has committed.
  ///
  /// - Throws: ``IntakeError`` with code `.storage` when the transaction failed; nothing of it was stored.
  func submit(_ submissions: [Submission]) async throws(IntakeError) -> [SubmissionOutcome]

  /// The incident `id` if it belongs to `tenant`; `nil` otherwise (another tenant's incident is not found).
  func incident(id: String, tenant: String) async throws -> Redress_V1_Incident?

  /// One page of `query.tenant`'s incidents, newest first, and the cursor for the next page if there is one.
  func incidents(matching query: IncidentQuery) async throws -> (incidents: [Redress_V1_Incident], next: IncidentQuery.Cursor?)

  /// How many incidents the store holds across all tenants (for tests and operations).
  func incidentCount() async throws -> Int

  /// Deletes idempotency keys older than the retention; returns how many.
  @discardableResult
  func purgeExpiredIdempotencyKeys() async throws -> Int

  // MARK: The outbox

  /// Claims up to `limit` incidents whose next delivery attempt is due by `dueBy`, the longest-waiting first,
  /// for this replica until `leaseUntil`. An incident another replica holds a live claim on is skipped; a claim
  /// whose holder died lapses at its lease's end and the incident is claimed again (remediation is idempotent
  /// on incident id, so a delivery repeated after a lapse is harmless).
  func claimDeliveries(dueBy: Date, now: Date, limit: Int, leaseUntil: Date) async throws -> [PendingDelivery]

  /// When the next delivery attempt is due (or another replica's claim lapses), or `nil` when the outbox is empty.
  func nextDeliveryDue() async throws -> Date?

  /// How many incidents still wait for delivery.
  func pendingDeliveryCount() async throws -> Int

  /// When the longest-waiting incident still in the outbox was received, or `nil` when the outbox is empty.
  func oldestPendingReceipt() async throws -> Date?

  /// Remediation accepted the incident: record its remedy, mark it in remediation, and drop it from the outbox.
  func recordDelivery(incidentID: String, remedyID: String) async throws

  /// A delivery attempt failed: count it, release the claim, and try again at `nextAttempt`.
  func recordFailedDelivery(incidentID: String, attempts: Int, nextAttempt: Date, error: String) async throws

  /// Makes every waiting delivery due at `now` (remediation answers again after an outage).
  func makeAllDeliveriesDue(now: Date) async throws

  /// Releases the database; later calls fail.
  func close() async throws
}

/// An incident waiting to be handed to remediation.
public struct PendingDelivery: Sendable {
  /// The incident as stored.
  public var incident: Redress_V1_Incident
  /// Failed attempts so far.
  public var attempts: Int
  /// The submit's stored trace context, if it was traced.
  public var traceContext: String?

  public init(incident: Redress_V1_Incident, attempts: Int, traceContext: String? = nil) {
    self.incident = incident
    self.attempts = attempts
    self.traceContext = traceContext
  }
}

/// Counts of group-committed writes since the store opened.
public struct CommitStatistics: Sendable, Hashable {
  /// Write transactions that stored submissions.
  public var transactions = 0
  /// Submissions those transactions held.
  public var submissions = 0
  /// Whole batches run again after PostgreSQL broke a deadlock or a serialization conflict between replicas.
  public var retries = 0

  public init() {}
}
