public import Foundation
public import RedressSchemas
public import RedressService

/// The playbook of making amends as a pure, deterministic state machine.
///
/// Given a remedy, an action, who takes it and when, ``apply(_:expectedVersion:to:by:at:context:)`` returns
/// the remedy after the action and the timeline entry describing it, or throws a ``PlaybookError`` saying why
/// not. It reads no clock, no database and no globals, so storage and RPC stay separate and tests can drive it
/// directly. docs/REMEDIATION.md describes the stages, rules and roles.
public struct Playbook: Sendable {
  /// The tunable rules.
  public var policy: PlaybookPolicy

  /// A playbook enforcing `policy`.
  public init(policy: PlaybookPolicy) {
    self.policy = policy
  }

  /// What an action did.
  public enum Outcome: Sendable {
    /// A new version of the remedy and the entry that records the change.
    case changed(Redress_V1_Remedy, Redress_V1_TimelineEntry)
    /// A retry of an already-applied idempotent action (same idempotency key): nothing changed.
    case unchanged(Redress_V1_Remedy)
  }

  /// Facts from outside the remedy that an action needs; the store looks them up before applying.
  public struct Context: Sendable {
    /// The id of an earlier remedy in the same tenant whose lesson has the fingerprint the action names.
    public var earlierLessonRemedyID: String?
    /// Compensation committed by the other remedies of this remedy's group, in its currency (group budget).
    public var groupCommittedMinor: Int64

    /// Facts for one action.
    public init(earlierLessonRemedyID: String? = nil, groupCommittedMinor: Int64 = 0) {
      self.earlierLessonRemedyID = earlierLessonRemedyID
      self.groupCommittedMinor = groupCommittedMinor
    }
  }

  // MARK: - Opening

  /// The remedy for `incident`, at version 1, investigating.
  ///
  /// - Parameters:
  ///   - id: The new remedy's id.
  ///   - by: Who opened it (intake's service identity).
  ///   - now: The opening time; deadlines count from it.
  public func open(incident: Redress_V1_Incident, id: String, by actor: String, at now: Date) -> Redress_V1_Remedy {
    var remedy = Redress_V1_Remedy()
    remedy.id = id
    remedy.incidentID = incident.id
    remedy.tenant = incident.tenant
    remedy.version = 1
    remedy.status = .open
    remedy.currentStage = .investigate
    remedy.priority = incident.triage.priority
    remedy.customer = incident.report.customer
    remedy.title = incident.report.title
    remedy.raisedOn = incident.report.channel
    remedy.groupID = incident.groupRootID.isEmpty ? incident.id : incident.groupRootID
    remedy.negotiationStartRound = 1
    let target = self.policy.serviceLevels.target(priority: remedy.priority, channel: remedy.raisedOn)
    remedy.acknowledgeBy = .init(now + target.acknowledge.timeInterval)
    remedy.resolveBy = .init(now + target.resolve.timeInterval)
    remedy.stages = Redress_V1_Stage.ordered.map { stage in
      var progress = Redress_V1_StageProgress()
      progress.stage = stage
      progress.state = stage == .investigate ? .active : .pending
      progress.dueAt = (stage == .investigate || stage == .acknowledge) ? remedy.acknowledgeBy : remedy.resolveBy
      return progress
    }
    let currency = Self.currency(of: incident, default: self.policy.defaultCurrency)
    let limits = self.policy.limits(for: currency)
    remedy.compensation.budget = .init(currency: currency, minor: limits.compensationBudgetMinor)
    remedy.compensation.committed = .init(currency: currency, minor: 0)
    remedy.compensation.issued = .init(currency: currency, minor: 0)
    remedy.goodwill.budget = .init(currency: currency, minor: limits.goodwillBudgetMinor)
    remedy.goodwill.committed = .init(currency: currency, minor: 0)
    remedy.goodwill.issued = .init(currency: currency, minor: 0)
    remedy.openedAt = .init(now)
    remedy.updatedAt = .init(now)
    var entry = Redress_V1_TimelineEntry()
    entry.version = 1
    entry.at = .init(now)
    entry.actor = actor
    entry.action = "open"
    entry.summary = "Remedy opened for incident \(incident.id); acknowledge by \(remedy.acknowledgeBy.date.iso8601)."
    remedy.timeline = [entry]
    remedy.nextAction = Self.nextAction(for: remedy)
    return remedy
  }

  static func currency(of incident: Redress_V1_Incident, default fallback: String) -> String {
    let report = incident.report
    if report.hasDemand, report.demand.hasAmount, !report.demand.amount.currency.isEmpty {
      return report.demand.amount.currency
    }
    if report.customer.hasYearlyValue, !report.customer.yearlyValue.currency.isEmpty {
      return report.customer.yearlyValue.currency
    }
    return fallback
  }

  // MARK: - Actions

  /// Applies `action` to `remedy`.
  ///
  /// Checks, in order: the caller's roles, an idempotent retry (returns ``Outcome/unchanged(_:)``), the
  /// version, the request's fields, then the playbook's rules.
  ///
  /// - Parameters:
  ///   - expectedVersion: The version the caller acted on; must equal `remedy.version`.
  ///   - actor: The authenticated caller.
  ///   - now: The time of the action.
  ///   - context: Facts the store looked up (earlier lessons).
  public func apply(
    _ action: Redress_V1_ActRequest.OneOf_Action,
    expectedVersion: Int64,
    to remedy: Redress_V1_Remedy,
    by actor: Identity,
    at now: Date,
    context: Context = Context()
  ) throws(PlaybookError) -> Outcome {
    try Self.checkRoles(for: action, actor: actor, remedy: remedy)
    if let replay = Self.idempotentReplay(action, remedy: remedy) {
      return try replay.get()
    }
    guard expectedVersion == remedy.version else {
      if expectedVersion <= 0 {
        throw .invalid("expected_version", "is required: pass the remedy's current version (\(remedy.version))")
      }
      throw PlaybookError(
        code: .staleVersion,
        message: "Remedy \(remedy.id) is at version \(remedy.version), not \(expectedVersion): get it again, "
          + "check the action still applies, and retry with expected_version \(remedy.version)."
      )
    }
    var transition = Transition(remedy: remedy, actor: actor, now: now, policy: self.policy, context: context)
    try transition.perform(action)
    return .changed(transition.remedy, transition.entry)
  }

  /// The group's shared investigation applied to `remedy`, a member still being investigated: the same
  /// verdict and route as if recorded on it, by the investigator, noting where it came from. `nil` when the
  /// remedy is past investigation (its own verdict stands).
  ///
  /// - Parameters:
  ///   - investigation: The `investigate` request recorded with `for_group` on remedy `sourceRemedyID`.
  ///   - investigator: Who recorded it.
  public func applyShared(
    _ investigation: Redress_V1_Investigate,
    from sourceRemedyID: String,
    by investigator: String,
    to remedy: Redress_V1_Remedy,
    at now: Date,
    context: Context = Context()
  ) -> (Redress_V1_Remedy, Redress_V1_TimelineEntry)? {
    guard remedy.status == .open, remedy.stages[Self.index(.investigate)].state == .active else { return nil }
    let actor = Identity(name: investigator, tenant: remedy.tenant, roles: [.operator])
    var transition = Transition(remedy: remedy, actor: actor, now: now, policy: self.policy, context: context)
    do {
      try transition.investigate(investigation, sharedFrom: sourceRemedyID)
    } catch {
      // It was valid on the source remedy, and the rules for an active investigate stage are the same.
      return nil
    }
    transition.finish()
    return (transition.remedy, transition.entry)
  }

  /// The remedy after the deadlines that passed by `now` are marked, with one entry recording the
  /// escalations and a follow-up call that came due; `nil` when nothing newly passed. A deadline fires once:
  /// its mark is stored in the remedy.
  public func checkDeadlines(of remedy: Redress_V1_Remedy, at now: Date, actor: String = "timer") -> (
    Redress_V1_Remedy, Redress_V1_TimelineEntry
  )? {
    guard remedy.status == .open else { return nil }
    var remedy = remedy
    var reasons: [(kind: String, reason: String)] = []
    let acknowledge = Self.index(.acknowledge)
    if Self.awaitsAcknowledgement(remedy), !remedy.escalations.contains(where: { $0.kind == "overdue:acknowledge" }),
      now >= remedy.acknowledgeBy.date
    {
      remedy.stages[acknowledge].overdue = true
      let investigate = Self.index(.investigate)
      if remedy.stages[investigate].state == .active {
        remedy.stages[investigate].overdue = true
      }
      reasons.append(("overdue:acknowledge", "The client was not acknowledged by \(remedy.acknowledgeBy.date.iso8601)."))
    }
    let fix = Self.index(.fix)
    // Each deadline has its own fired mark: the resolve deadline marking the active (fix) stage overdue must
    // not count as the fix deadline having fired.
    if remedy.stages[fix].state == .active, !remedy.fix.owner.isEmpty, !remedy.fix.hasDoneAt,
      !remedy.fix.deadlineFired, now >= remedy.fix.dueAt.date
    {
      remedy.fix.deadlineFired = true
      remedy.stages[fix].overdue = true
      reasons.append(("overdue:fix", "The fix owned by \(remedy.fix.owner) was due \(remedy.fix.dueAt.date.iso8601)."))
    }
    if !remedy.escalations.contains(where: { $0.kind == "overdue:resolve" }), now >= remedy.resolveBy.date {
      if let current = remedy.stages.firstIndex(where: { $0.state == .active }) {
        remedy.stages[current].overdue = true
      }
      reasons.append(("overdue:resolve", "The remedy was not resolved by \(remedy.resolveBy.date.iso8601)."))
    }
    let followUpDue = Self.followUpAwaitsAnnouncement(remedy) && now >= remedy.followUp.scheduledAt.date
    if followUpDue { remedy.followUp.dueAnnouncedFor = remedy.followUp.scheduledAt }
    guard !reasons.isEmpty || followUpDue else { return nil }
    for (kind, reason) in reasons {
      var escalation = Redress_V1_Escalation()
      escalation.at = .init(now)
      escalation.by = actor
      escalation.kind = kind
      escalation.reason = reason
      remedy.escalations.append(escalation)
    }
    remedy.version += 1
    remedy.updatedAt = .init(now)
    remedy.overdue = Self.isOverdue(remedy)
    remedy.nextAction = Self.nextAction(for: remedy)
    var entry = Redress_V1_TimelineEntry()
    entry.version = remedy.version
    entry.at = .init(now)
    entry.actor = actor
    var summary: [String] = []
    if !reasons.isEmpty { summary.append("Escalated: " + reasons.map(\.reason).joined(separator: " ")) }
    if followUpDue { summary.append("The follow-up call with the client is due.") }
    entry.action = reasons.isEmpty ? "follow-up-due" : "escalate"
    entry.summary = summary.joined(separator: " ")
    entry.internal = true
    remedy.timeline.append(entry)
    return (remedy, entry)
  }

  /// The earliest deadline of `remedy` that has not fired yet, or `nil` when none is left; the store keeps it
  /// in an indexed column so the timer finds due remedies without reading them all.
  public static func nextDeadline(of remedy: Redress_V1_Remedy) -> Date? {
    guard remedy.status == .open else { return nil }
    var candidates: [Date] = []
    if Self.awaitsAcknowledgement(remedy), !remedy.escalations.contains(where: { $0.kind == "overdue:acknowledge" }) {
      candidates.append(remedy.acknowledgeBy.date)
    }
    let fix = remedy.stages[Self.index(.fix)]
    if fix.state == .active, !remedy.fix.owner.isEmpty, !remedy.fix.hasDoneAt, !remedy.fix.deadlineFired {
      candidates.append(remedy.fix.dueAt.date)
    }
    if !remedy.escalations.contains(where: { $0.kind == "overdue:resolve" }) {
      candidates.append(remedy.resolveBy.date)
    }
    if Self.followUpAwaitsAnnouncement(remedy) {
      candidates.append(remedy.followUp.scheduledAt.date)
    }
    return candidates.min()
  }

  /// Whether the follow-up call is scheduled, not yet made, and its arrival not yet announced (a rescheduled
  /// call is announced again).
  static func followUpAwaitsAnnouncement(_ remedy: Redress_V1_Remedy) -> Bool {
    let state = remedy.stages[Self.index(.followUp)].state
    return remedy.followUp.hasScheduledAt && (state == .pending || state == .active)
      && remedy.followUp.dueAnnouncedFor != remedy.followUp.scheduledAt
  }

  /// Whether an unfinished stage is overdue or the remedy missed its resolve deadline while open.
  static func isOverdue(_ remedy: Redress_V1_Remedy) -> Bool {
    guard remedy.status == .open else { return false }
    if remedy.escalations.contains(where: { $0.kind == "overdue:resolve" }) { return true }
    return remedy.stages.contains { $0.overdue && ($0.state == .active || $0.state == .pending) }
  }

  /// Whether the acknowledgement clock runs: no receipt acknowledged and no apology (or decline) yet.
  static func awaitsAcknowledgement(_ remedy: Redress_V1_Remedy) -> Bool {
    let state = remedy.stages[Self.index(.acknowledge)].state
    return !remedy.hasReceipt && (state == .pending || state == .active)
  }

  static func index(_ stage: Redress_V1_Stage) -> Int {
    stage.rawValue - 1
  }
}
