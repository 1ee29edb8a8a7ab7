import GRPCCore
import GRPCProtobuf
import Logging
import PostgresNIO
import RedressSchemas
import RedressService
import SwiftProtobuf
import Foundation

/// The `redress.v1.Remediation` RPCs: authentication and tenant checks, request validation, then the store
/// and the playbook. Every domain error becomes an RPC status in ``rpcError(_:)`` and nowhere else.
struct RemediationService: Redress_V1_Remediation.SimpleServiceProtocol {
  /// Roles that may read remedies; a client tool without a staff role sees ``Redress_V1_Remedy/clientView``.
  static let readers: Set<Role> = [.read, .operator, .approver, .legal, .clientTool, .service]
  /// Roles that may call `Act` at all; the playbook checks each action's own roles.
  static let actors: Set<Role> = [.operator, .approver, .legal, .clientTool]

  let store: any RemediationStorage
  let playbook: Playbook
  let clock: any WallClock
  let broadcaster: RemedyBroadcaster
  /// Remedies opened and changed (docs/OPERATIONS.md).
  let metrics: RedressMetrics
  /// Called after each committed change (wakes the webhook dispatcher: the change may have queued events).
  let committed: @Sendable () -> Void
  let logger: Logger

  init(
    store: any RemediationStorage, playbook: Playbook, clock: any WallClock, broadcaster: RemedyBroadcaster,
    metrics: RedressMetrics, committed: @escaping @Sendable () -> Void = {}, logger: Logger
  ) {
    self.metrics = metrics
    self.committed = committed
    self.store = store
    self.playbook = playbook
    self.clock = clock
    self.broadcaster = broadcaster
    self.logger = logger
  }

  // MARK: - RPCs

  public func openRemedy(
    request: Redress_V1_OpenRemedyRequest,
    context: ServerContext
  ) async throws -> Redress_V1_OpenRemedyResponse {
    let caller = try Caller.require(anyOf: .service)
    var violations = FieldViolations()
    let incident = request.incident
    if !request.hasIncident { violations.add("incident", "is required") }
    violations.checkIdentifier(incident.id, "incident.id")
    Self.identifier(incident.tenant, "incident.tenant", into: &violations)
    Self.identifier(incident.report.customer.id, "incident.report.customer.id", into: &violations)
    if !incident.groupRootID.isEmpty { violations.checkIdentifier(incident.groupRootID, "incident.group_root_id") }
    if incident.report.title.utf8.count > 200 { violations.add("incident.report.title", "must be at most 200 bytes") }
    try violations.throwIfAny()
    do {
      let now = self.clock.now()
      let (remedy, alreadyOpen) = try await self.store.open(
        incident: incident,
        newID: ResourceID.make(prefix: "rem", at: now),
        by: caller.name,
        at: now,
        playbook: self.playbook
      )
      if !alreadyOpen {
        self.committed()
        self.metrics.increment("redress_remediation_remedies_opened_total", [("stage", "\(remedy.currentStage)")])
        self.logger.info(
          "remedy opened",
          metadata: ["remedy": "\(remedy.id)", "incident": "\(incident.id)", "tenant": "\(remedy.tenant)"]
        )
      }
      return .with {
        $0.remedy = remedy
        $0.alreadyOpen = alreadyOpen
      }
    } catch {
      throw self.rpcError(error)
    }
  }

  public func getRemedy(request: Redress_V1_GetRemedyRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    let caller = try Caller.require(anyOf: Self.readers)
    var violations = FieldViolations()
    switch request.key {
    case .remedyID(let id): violations.checkIdentifier(id, "remedy_id")
    case .incidentID(let id): violations.checkIdentifier(id, "incident_id")
    case nil: violations.add("key", "give remedy_id or incident_id")
    }
    try violations.throwIfAny()
    do {
      let remedy: Redress_V1_Remedy?
      switch request.key {
      case .remedyID(let id) where !id.isEmpty:
        remedy = try await self.store.remedy(id: id, tenant: caller.tenant)
      case .incidentID(let id) where !id.isEmpty:
        remedy = try await self.store.remedy(incidentID: id, tenant: caller.tenant)
      default:
        throw PlaybookError.invalid("key", "give remedy_id or incident_id")
      }
      guard let remedy else {
        throw PlaybookError.notFound("No such remedy in tenant \(caller.tenant); check the id.")
      }
      return Self.view(of: remedy, for: caller)
    } catch {
      throw self.rpcError(error)
    }
  }

  public func listRemedies(
    request: Redress_V1_ListRemediesRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ListRemediesResponse {
    let caller = try Caller.require(anyOf: Self.readers)
    var violations = FieldViolations()
    let pageSize = request.pageSize == 0 ? 50 : Int(request.pageSize)
    if !(1...500).contains(pageSize) { violations.add("page_size", "must be 1-500 (0 means 50)") }
    violations.checkFilterCount(request.stages.count, "stages")
    violations.checkFilterCount(request.statuses.count, "statuses")
    violations.checkFilterText(request.owner, "owner", maxBytes: Transition.maxShort)
    if !request.customerID.isEmpty { Self.identifier(request.customerID, "customer_id", into: &violations) }
    if !request.groupID.isEmpty { violations.checkIdentifier(request.groupID, "group_id") }
    for (index, stage) in request.stages.prefix(FieldViolations.maxFilterValues).enumerated() where !Redress_V1_Stage.ordered.contains(stage) {
      violations.add("stages[\(index)]", "must be a stage (investigate ... learn)")
    }
    let statuses: [Redress_V1_RemedyStatus] = [.open, .resolved, .declined, .referred, .withLegal]
    for (index, status) in request.statuses.prefix(FieldViolations.maxFilterValues).enumerated() where !statuses.contains(status) {
      violations.add("statuses[\(index)]", "must be a status (open, resolved, declined, referred, with legal)")
    }
    let fingerprint = PageToken.fingerprint(of: request, tenant: caller.tenant) {
      $0.pageSize = 0
      $0.pageToken = ""
    }
    var token: PageToken?
    do {
      token = try PageToken.decode(request.pageToken, expectedFilters: fingerprint)
    } catch {
      violations.add("page_token", error.reason)
    }
    try violations.throwIfAny()
    var filter = RemediationStore.Filter()
    filter.stages = request.stages
    filter.statuses = request.statuses
    filter.owner = request.owner
    filter.overdueOnly = request.overdueOnly
    filter.recurrencesOnly = request.recurrencesOnly
    filter.customerID = request.customerID
    filter.groupID = request.groupID
    do {
      var remedies = try await self.store.list(
        tenant: caller.tenant,
        filter: filter,
        afterID: token?.afterID,
        limit: pageSize + 1
      )
      var response = Redress_V1_ListRemediesResponse()
      if remedies.count > pageSize {
        remedies.removeLast(remedies.count - pageSize)
        if let last = remedies.last {
          response.nextPageToken = PageToken(afterSortKey: 0, afterID: last.id, filters: fingerprint).encoded()
        }
      }
      response.remedies = remedies.map { Self.view(of: $0, for: caller) }
      // The group's summary names budgets and counts across clients: staff only.
      if !request.groupID.isEmpty, !Self.seesClientView(caller) {
        let members = try await self.store.group(request.groupID, tenant: caller.tenant)
        response.group = self.playbook.summary(ofGroup: request.groupID, remedies: members)
      }
      return response
    } catch {
      throw self.rpcError(error)
    }
  }

  public func watchRemedy(
    request: Redress_V1_WatchRemedyRequest,
    response: RPCWriter<Redress_V1_RemedyUpdate>,
    context: ServerContext
  ) async throws {
    let caller = try Caller.require(anyOf: Self.readers)
    var violations = FieldViolations()
    violations.checkIdentifier(request.remedyID, "remedy_id")
    if request.afterVersion < 0 { violations.add("after_version", "must be 0 (snapshot) or a version seen before") }
    try violations.throwIfAny()
    // grpc-swift never cancels a handler: the stream must end by itself when its client goes away or the
    // server shuts down, or it would hold the server open forever.
    try await withStreamLifetime(context: context) {
      try await self.watch(request: request, caller: caller, response: response)
    }
  }

  /// The watch itself: subscribe, send the snapshot or the stored changes, then every live change in order.
  private func watch(
    request: Redress_V1_WatchRemedyRequest,
    caller: Identity,
    response: RPCWriter<Redress_V1_RemedyUpdate>
  ) async throws {
    // Subscribe before reading, so no change falls between what the store returns and what is published.
    let (subscription, live) = self.broadcaster.subscribe(remedyID: request.remedyID)
    defer { self.broadcaster.unsubscribe(subscription) }
    var last: Int64
    do {
      guard let current = try await self.store.remedy(id: request.remedyID, tenant: caller.tenant) else {
        throw PlaybookError.notFound("No remedy '\(request.remedyID)' in tenant \(caller.tenant).")
      }
      if request.afterVersion == 0 {
        try await response.write(.with { $0.snapshot = Self.view(of: current, for: caller) })
        last = current.version
      } else {
        guard request.afterVersion <= current.version else {
          throw PlaybookError.invalid(
            "after_version",
            "\(request.afterVersion) is beyond the remedy's version \(current.version); resume from a version you saw"
          )
        }
        last = try await self.sendStored(remedyID: request.remedyID, caller: caller, after: request.afterVersion, to: response)
      }
    } catch {
      throw self.rpcError(error)
    }
    for await change in live {
      let version = change.remedy.version
      if version <= last { continue }
      do {
        if version > last + 1 {
          // Two commits published out of order: fill the gap from the store, in order.
          last = try await self.sendStored(remedyID: request.remedyID, caller: caller, after: last, to: response)
        } else {
          try await self.send(change, caller: caller, to: response)
          last = version
        }
      } catch {
        throw self.rpcError(error)
      }
    }
    if Task.isCancelled { return }
    throw RPCError(
      code: .unavailable,
      message: "The watch ended (the server is shutting down or the watcher fell behind): resume with after_version \(last)."
    )
  }

  public func act(request: Redress_V1_ActRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    let caller = try Caller.require(anyOf: Self.actors)
    var violations = FieldViolations()
    violations.checkIdentifier(request.remedyID, "remedy_id")
    if request.action == nil { violations.add("action", "is required: one playbook action") }
    try violations.throwIfAny()
    guard let action = request.action else { throw RPCError(code: .invalidArgument, message: "action is required") }
    do {
      let now = self.clock.now()
      let (outcome, before, groupChanges) = try await self.store.act(
        remedyID: request.remedyID,
        tenant: caller.tenant,
        action: action,
        expectedVersion: request.expectedVersion,
        by: caller,
        at: now,
        playbook: self.playbook
      )
      switch outcome {
      case .changed(let remedy, let entry):
        self.committed()
        RemedyMeasures.record(before: before, after: remedy, at: now, into: self.metrics)
        // `entry.action` is the playbook's own word for the action (a fixed set), the stage an enum case.
        self.metrics.increment(
          "redress_remediation_actions_total", [("action", entry.action), ("stage", "\(remedy.currentStage)")])
        self.logger.info(
          "remedy changed",
          metadata: ["remedy": "\(remedy.id)", "version": "\(remedy.version)", "action": "\(entry.action)", "by": "\(caller.name)"]
        )
        self.broadcaster.publish(.with {
          $0.entry = entry
          $0.remedy = remedy
        })
        for (member, memberEntry) in groupChanges {
          self.broadcaster.publish(.with {
            $0.entry = memberEntry
            $0.remedy = member
          })
        }
        if !groupChanges.isEmpty {
          self.logger.info(
            "group investigation shared",
            metadata: ["remedy": "\(remedy.id)", "group": "\(remedy.groupID)", "members": "\(groupChanges.count)"]
          )
        }
        return Self.view(of: remedy, for: caller)
      case .unchanged(let remedy):
        return Self.view(of: remedy, for: caller)
      }
    } catch {
      throw self.rpcError(error)
    }
  }

  // MARK: - Helpers

  /// Sends every stored change after `version`; returns the last version sent (or `version`).
  private func sendStored(
    remedyID: String,
    caller: Identity,
    after version: Int64,
    to response: RPCWriter<Redress_V1_RemedyUpdate>
  ) async throws -> Int64 {
    guard let changes = try await self.store.changes(remedyID: remedyID, tenant: caller.tenant, after: version) else {
      throw PlaybookError.notFound("No remedy '\(remedyID)' in tenant \(caller.tenant).")
    }
    var last = version
    for (entry, remedy) in changes {
      try await self.send(.with {
        $0.entry = entry
        $0.remedy = remedy
      }, caller: caller, to: response)
      last = remedy.version
    }
    return last
  }

  private func send(_ change: Redress_V1_RemedyChange, caller: Identity, to response: RPCWriter<Redress_V1_RemedyUpdate>) async throws {
    if Self.seesClientView(caller) {
      // A client tool sees only the changes its view allows; versions skip over the rest.
      guard let entry = change.entry.clientView else { return }
      var visible = change
      visible.entry = entry
      visible.remedy = change.remedy.clientView
      try await response.write(.with { $0.change = visible })
    } else {
      try await response.write(.with { $0.change = change })
    }
  }

  static func seesClientView(_ identity: Identity) -> Bool {
    identity.has(.clientTool) && !identity.has(.operator) && !identity.has(.approver) && !identity.has(.legal)
      && !identity.has(.read)
  }

  static func view(of remedy: Redress_V1_Remedy, for identity: Identity) -> Redress_V1_Remedy {
    Self.seesClientView(identity) ? remedy.clientView : remedy
  }

  /// A name intake copies from its configuration or a report (tenant, customer id): present, bounded, one line.
  static func identifier(_ value: String, _ field: String, into violations: inout FieldViolations) {
    if value.isEmpty {
      violations.add(field, "is required")
    } else if value.utf8.count > FieldViolations.maxIdentifierBytes * 4 {
      violations.add(field, "must be at most \(FieldViolations.maxIdentifierBytes * 4) bytes")
    } else {
      violations.checkCharacters(value, field, .line)
    }
  }

  /// The one place domain errors become RPC statuses.
  /// A failure of the connection (not of the statement): the request can be retried on another connection.
  static func isConnectionFailure(_ error: PSQLError) -> Bool {
    [.connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection]
      .contains(error.code)
  }

  func rpcError(_ error: any Error) -> any Error {
    switch error {
    case let error as PlaybookError:
      switch error.code {
      case .ruleViolation: return RPCError(code: .failedPrecondition, message: error.message)
      case .invalidArgument: return error.fieldViolations?.status ?? RPCError(code: .invalidArgument, message: error.message)
      case .permissionDenied: return RPCError(code: .permissionDenied, message: error.message)
      case .staleVersion: return RPCError(code: .aborted, message: error.message)
      case .notFound: return RPCError(code: .notFound, message: error.message)
      default: return RPCError(code: .unknown, message: error.message)
      }
    case let error as RPCError:
      return error
    case let error as GoogleRPCStatus:
      return error
    case let error as PostgresUnavailable:
      self.logger.warning("database unavailable", metadata: ["error": "\(error)"])
      return RPCError(code: .unavailable, message: "The database is unavailable; retry shortly.")
    case let error as PSQLError where ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? ""):
      // Two replicas' transactions crossed (a deadlock or serialization failure): nothing was changed.
      return RPCError(code: .aborted, message: "The remedy changed concurrently; get it again and retry.")
    case let error as PSQLError where Self.isConnectionFailure(error):
      self.logger.warning("database connection failed", metadata: ["error": "\(error.code)"])
      return RPCError(code: .unavailable, message: "The database connection failed; retry shortly.")
    case is CancellationError:
      // The call ended under the handler (its client left, its deadline passed, shutdown): not a store failure.
      return RPCError(code: RPCDeadline.hasPassed ? .deadlineExceeded : .cancelled, message: "The call ended before it completed.")
    default:
      self.logger.error("remediation store failed", metadata: ["error": "\(error)"])
      return RPCError(code: .internalError, message: "The remediation store failed; retry later.")
    }
  }
}
