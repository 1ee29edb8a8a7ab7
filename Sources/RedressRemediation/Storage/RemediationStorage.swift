public import Foundation
public import RedressSchemas
public import RedressService

/// What the remediation service needs from its database; ``RemediationStore`` (SQLite, the embedded default)
/// and ``PostgresRemediationStore`` (several replicas on one PostgreSQL) implement it with the same guarantees:
/// every change, its entry and its change-log copy commit together after a version check, and a method
/// returns only once its change is durable.
public protocol RemediationStorage: WebhookStorage {
  /// Opens the remedy for `incident`, or returns the one its tenant already has (and `true`).
  func open(
    incident: Redress_V1_Incident,
    newID: String,
    by actor: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, alreadyOpen: Bool)

  /// Applies `action` to remedy `id` of `tenant` in one transaction; `before` is the remedy it was applied to,
  /// `groupChanges` the other members of its group that a shared investigation changed in the same transaction.
  func act(
    remedyID id: String,
    tenant: String,
    action: Redress_V1_ActRequest.OneOf_Action,
    expectedVersion: Int64,
    by actor: Identity,
    at now: Date,
    playbook: Playbook
  ) async throws -> (outcome: Playbook.Outcome, before: Redress_V1_Remedy, groupChanges: [(remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)])

  /// Marks the deadlines of remedy `id` that passed by `now`; `nil` when none newly passed. Fires once even
  /// when several replicas check at the same time.
  func checkDeadlines(
    remedyID id: String,
    at now: Date,
    playbook: Playbook
  ) async throws -> (remedy: Redress_V1_Remedy, entry: Redress_V1_TimelineEntry)?

  func remedy(id: String, tenant: String) async throws -> Redress_V1_Remedy?
  func remedy(incidentID: String, tenant: String) async throws -> Redress_V1_Remedy?
  func list(tenant: String, filter: RemediationStore.Filter, afterID: String?, limit: Int) async throws -> [Redress_V1_Remedy]
  func group(_ groupID: String, tenant: String) async throws -> [Redress_V1_Remedy]
  func changes(
    remedyID id: String,
    tenant: String,
    after version: Int64
  ) async throws -> [(entry: Redress_V1_TimelineEntry, remedy: Redress_V1_Remedy)]?
  func remediesWithDeadline(atOrBefore now: Date) async throws -> [String]
  /// Open remedies of every tenant by current stage: how many, and how many of them are overdue (metrics).
  func openRemedyCounts() async throws -> [Redress_V1_Stage: (open: Int, overdue: Int)]
}

extension RemediationStore: RemediationStorage {}
