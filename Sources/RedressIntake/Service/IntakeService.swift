public import GRPCCore
import GRPCProtobuf
public import Logging
public import Tracing
public import RedressSchemas
public import RedressService
import Foundation
import SwiftProtobuf

/// The `redress.v1.Intake` service: validates, triages and durably stores incidents, and answers for them,
/// always within the caller's tenant.
///
/// Roles: `submit` for SubmitIncident and SubmitIncidents, `read` for GetIncident and ListIncidents.
public final class IntakeService: Redress_V1_Intake.SimpleServiceProtocol, Sendable {
  private let store: any IntakeStorage
  private let triager: Triager
  private let validator: IncidentValidator
  private let limits: IntakeConfig.Limits
  private let clock: any WallClock
  private let metrics: RedressMetrics
  /// Reads the submit's trace context to keep it with the outbox row.
  private let tracer: any Tracer
  private let logger: Logger

  /// A service over `store`, triaging with `triage` and enforcing `limits`; `clock` dates receipts and
  /// validation; submissions are counted in `metrics` (docs/OPERATIONS.md).
  public init(
    store: any IntakeStorage,
    triage: TriagePolicy,
    limits: IntakeConfig.Limits,
    clock: any WallClock,
    metrics: RedressMetrics = RedressMetrics(),
    tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) {
    self.metrics = metrics
    self.tracer = tracer
    self.store = store
    self.triager = Triager(policy: triage)
    self.validator = IncidentValidator(futureTolerance: limits.occurredAtFutureTolerance)
    self.limits = limits
    self.clock = clock
    self.logger = logger
  }

  // MARK: Submitting

  /// Validates, triages and stores one incident; answers after its commit. Needs the `submit` role.
  public func submitIncident(
    request: Redress_V1_SubmitIncidentRequest,
    context: ServerContext
  ) async throws -> Redress_V1_SubmitIncidentResponse {
    let identity = try Caller.require(anyOf: .submit)
    let violations = self.validator.violations(of: request, now: self.clock.now())
    if !violations.isEmpty {
      self.logger.debug(
        "submission rejected", metadata: ["identity": "\(identity.name)", "problems": "\(violations.all.count)"])
      self.metrics.increment("redress_intake_validation_failures_total")
      throw violations.status
    }
    let submission = try self.submission(request, from: identity)
    let outcomes: [SubmissionOutcome]
    do {
      outcomes = try await self.store.submit([submission])
    } catch {
      self.logger.error("store failed", metadata: ["error": "\(error)"])
      self.metrics.increment("redress_intake_store_failures_total")
      throw error.rpcError
    }
    return try self.response(for: outcomes[0], identity: identity).get()
  }

  /// Bulk submission: every valid item is stored in one transaction and each item is answered on its own.
  /// Needs the `submit` role.
  public func submitIncidents(
    request: RPCAsyncSequence<Redress_V1_SubmitIncidentRequest, any Error>,
    context: ServerContext
  ) async throws -> Redress_V1_SubmitIncidentsResponse {
    let identity = try Caller.require(anyOf: .submit)
    var items: [(key: String, item: BulkItem)] = []
    for try await item in request {
      guard items.count < self.limits.maxItemsPerBulkCall else {
        throw RPCError(
          code: .invalidArgument,
          message:
            "A SubmitIncidents call may carry at most \(self.limits.maxItemsPerBulkCall) items; split the stream into several calls."
        )
      }
      let violations = self.validator.violations(of: item, now: self.clock.now())
      if violations.isEmpty {
        items.append((item.idempotencyKey, .valid(try self.submission(item, from: identity))))
      } else {
        self.metrics.increment("redress_intake_validation_failures_total")
        items.append((item.idempotencyKey, .invalid(Self.itemError(violations))))
      }
    }

    // Every valid item goes to the store at once: one transaction for the whole call (group commit).
    let submissions = items.compactMap { entry -> Submission? in
      if case .valid(let submission) = entry.item { submission } else { nil }
    }
    var outcomes: [Result<Redress_V1_SubmitIncidentResponse, RPCError>]
    do {
      outcomes = try await self.store.submit(submissions).map { self.response(for: $0, identity: identity) }
    } catch {
      self.logger.error("store failed", metadata: ["error": "\(error)"])
      self.metrics.increment("redress_intake_store_failures_total")
      outcomes = Array(repeating: .failure(error.rpcError), count: submissions.count)
    }

    var response = Redress_V1_SubmitIncidentsResponse()
    var next = outcomes.makeIterator()
    for (index, entry) in items.enumerated() {
      var result = Redress_V1_SubmitIncidentsResult()
      result.index = Int32(index)
      result.idempotencyKey = entry.key
      switch entry.item {
      case .invalid(let error):
        result.error = error
      case .valid:
        switch next.next() {
        case .success(let accepted):
          result.accepted = accepted
        case .failure(let error):
          result.error = .with {
            $0.code = Int32(error.code.rawValue)
            $0.message = error.message
          }
        case nil:
          throw RPCError(code: .internalError, message: "The store answered fewer outcomes than submissions.")
        }
      }
      if case .accepted = result.outcome { response.accepted += 1 } else { response.rejected += 1 }
      response.results.append(result)
    }
    return response
  }

  private enum BulkItem {
    case invalid(Redress_V1_ItemError)
    case valid(Submission)
  }

  private func submission(_ request: Redress_V1_SubmitIncidentRequest, from identity: Identity) throws -> Submission {
    do {
      // The hash covers the report as sent; a missing occurred_at is filled in afterwards, so retrying the
      // same request (without it) replays instead of conflicting.
      var submission = try Submission(
        identity: identity,
        idempotencyKey: request.idempotencyKey,
        report: request.report,
        triage: self.triager.triage(request.report)
      )
      if !submission.report.hasOccurredAt {
        submission.report.occurredAt = .init(date: self.clock.now())
      }
      submission.traceContext = StoredTraceContext.current(self.tracer)
      return submission
    } catch {
      throw RPCError(code: .internalError, message: "The report could not be encoded.", cause: error)
    }
  }

  private func response(
    for outcome: SubmissionOutcome,
    identity: Identity
  ) -> Result<Redress_V1_SubmitIncidentResponse, RPCError> {
    switch outcome {
    case .accepted(let incident):
      self.metrics.increment(
        "redress_intake_incidents_accepted_total",
        [("priority", "\(incident.triage.priority)"), ("category", "\(incident.report.category)")])
      self.logger.info(
        "incident accepted",
        metadata: [
          "incident": "\(incident.id)", "tenant": "\(incident.tenant)", "identity": "\(identity.name)",
          "priority": "\(incident.triage.priority)", "needs_review": "\(incident.triage.needsReview)",
        ]
      )
      return .success(.with { $0.incident = incident })
    case .replayed(let incident):
      self.metrics.increment("redress_intake_submissions_replayed_total")
      self.logger.info(
        "submission replayed", metadata: ["incident": "\(incident.id)", "identity": "\(identity.name)"])
      return .success(
        .with {
          $0.incident = incident
          $0.replayed = true
        })
    case .conflict(let original):
      self.metrics.increment("redress_intake_idempotency_conflicts_total")
      return .failure(
        IntakeError(
          code: .idempotencyConflict,
          message:
            "The idempotency key was already used by '\(identity.name)' for incident \(original) with a different report; use a new key for a new incident, or resend the original report unchanged."
        ).rpcError
      )
    }
  }

  private static func itemError(_ violations: FieldViolations) -> Redress_V1_ItemError {
    .with {
      $0.code = Int32(RPCError.Code.invalidArgument.rawValue)
      $0.message = violations.message
      $0.violations = violations.all.map { violation in
        .with {
          $0.field = violation.field
          $0.description_p = violation.description
        }
      }
    }
  }

  // MARK: Reading

  /// One incident of the caller's tenant; `notFound` otherwise. Needs the `read` role.
  public func getIncident(
    request: Redress_V1_GetIncidentRequest,
    context: ServerContext
  ) async throws -> Redress_V1_Incident {
    let identity = try Caller.require(anyOf: .read)
    var violations = FieldViolations()
    violations.checkIdentifier(request.incidentID, "incident_id")
    try violations.throwIfAny()
    let incident: Redress_V1_Incident?
    do {
      incident = try await self.store.incident(id: request.incidentID, tenant: identity.tenant)
    } catch {
      throw IntakeError(code: .storage, message: "The incident store could not be read; retry.", cause: error).rpcError
    }
    guard let incident else {
      // The same answer for an unknown id and another tenant's: existence is not disclosed.
      throw IntakeError(code: .notFound, message: "No incident '\(request.incidentID)' in your tenant.").rpcError
    }
    return incident
  }

  /// The caller's tenant's incidents, newest first, filtered and paged. Needs the `read` role.
  public func listIncidents(
    request: Redress_V1_ListIncidentsRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ListIncidentsResponse {
    let identity = try Caller.require(anyOf: .read)
    var violations = FieldViolations()
    if request.pageSize < 0 || Int(request.pageSize) > self.limits.maxPageSize {
      violations.add("page_size", "must be 1-\(self.limits.maxPageSize), or 0 for \(self.limits.defaultPageSize)")
    }
    violations.checkFilterCount(request.statuses.count, "statuses")
    violations.checkFilterCount(request.priorities.count, "priorities")
    violations.checkFilterCount(request.categories.count, "categories")
    violations.checkFilterText(request.customerID, "customer_id", maxBytes: IncidentValidator.Limits.customerIDMaxCharacters * 4)
    for (index, status) in request.statuses.prefix(FieldViolations.maxFilterValues).enumerated() where !Self.known(status) {
      violations.add("statuses[\(index)]", "\(status.rawValue) is not an incident status (1-2)")
    }
    for (index, priority) in request.priorities.prefix(FieldViolations.maxFilterValues).enumerated() where !Self.known(priority) {
      violations.add("priorities[\(index)]", "\(priority.rawValue) is not a priority (1-4)")
    }
    for (index, category) in request.categories.prefix(FieldViolations.maxFilterValues).enumerated() where !Self.known(category) {
      violations.add("categories[\(index)]", "\(category.rawValue) is not a category (1-8)")
    }
    if request.hasReceivedAfter, !request.receivedAfter.isWellFormed {
      violations.add("received_after", "is not a valid timestamp")
    }
    if request.hasReceivedBefore, !request.receivedBefore.isWellFormed {
      violations.add("received_before", "is not a valid timestamp")
    }
    if request.hasReceivedAfter, request.hasReceivedBefore, request.receivedAfter.date >= request.receivedBefore.date {
      violations.add("received_before", "must be later than received_after")
    }

    // The token is bound to the tenant and every filter, so it cannot be replayed with other filters.
    var canonical = request
    canonical.pageSize = 0
    canonical.pageToken = ""
    let canonicalBytes: [UInt8] = (try? canonical.serializedBytes()) ?? []
    let fingerprint = PageToken.fingerprint(of: Data(identity.tenant.utf8) + Data([0]) + Data(canonicalBytes))
    var cursor: IncidentQuery.Cursor?
    do {
      if let token = try PageToken.decode(request.pageToken, expectedFilters: fingerprint) {
        cursor = IncidentQuery.Cursor(receivedAtMilliseconds: token.afterSortKey, incidentID: token.afterID)
      }
    } catch {
      violations.add("page_token", error.reason)
    }
    try violations.throwIfAny()

    var query = IncidentQuery(
      tenant: identity.tenant,
      pageSize: request.pageSize == 0 ? self.limits.defaultPageSize : Int(request.pageSize)
    )
    query.statuses = request.statuses
    query.priorities = request.priorities
    query.categories = request.categories
    query.customerID = request.customerID
    query.receivedAfter = request.hasReceivedAfter ? request.receivedAfter.date : nil
    query.receivedBefore = request.hasReceivedBefore ? request.receivedBefore.date : nil
    query.after = cursor

    let page: (incidents: [Redress_V1_Incident], next: IncidentQuery.Cursor?)
    do {
      page = try await self.store.incidents(matching: query)
    } catch {
      throw IntakeError(code: .storage, message: "The incident store could not be read; retry.", cause: error).rpcError
    }
    return .with {
      $0.incidents = page.incidents
      if let next = page.next {
        $0.nextPageToken = PageToken(
          afterSortKey: next.receivedAtMilliseconds, afterID: next.incidentID, filters: fingerprint
        ).encoded()
      }
    }
  }

  private static func known(_ status: Redress_V1_IncidentStatus) -> Bool {
    [.awaitingRemediation, .inRemediation].contains(status)
  }

  private static func known(_ priority: Redress_V1_Priority) -> Bool {
    [.p1, .p2, .p3, .p4].contains(priority)
  }

  private static func known(_ category: Redress_V1_Category) -> Bool {
    if case .UNRECOGNIZED = category { return false }
    return category != .unspecified
  }
}
