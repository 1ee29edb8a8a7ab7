import Foundation
import RedressSchemas
import RedressService

/// One action being applied: the remedy being changed, who acts, when, and the entry describing it.
///
/// Each `perform…` method checks the rules for its action before changing anything; ``finish()`` then bumps
/// the version and recomputes what is derived (owner, overdue, next action, current stage).
struct Transition {
  var remedy: Redress_V1_Remedy
  let actor: Identity
  let now: Date
  let policy: PlaybookPolicy
  let context: Playbook.Context
  var entry = Redress_V1_TimelineEntry()

  init(remedy: Redress_V1_Remedy, actor: Identity, now: Date, policy: PlaybookPolicy, context: Playbook.Context) {
    self.remedy = remedy
    self.actor = actor
    self.now = now
    self.policy = policy
    self.context = context
  }

  static let maxText = 4096
  static let maxShort = 200

  mutating func perform(_ action: Redress_V1_ActRequest.OneOf_Action) throws(PlaybookError) {
    switch action {
    case .investigate(let request): try self.investigate(request)
    case .apologize(let request): try self.apologize(request)
    case .offer(let request): try self.offer(request)
    case .respond(let request): try self.respond(request)
    case .compensate(let request): try self.compensate(request)
    case .approve(let request): try self.approve(request)
    case .fix(let request): try self.fix(request)
    case .goodwill(let request): try self.goodwill(request)
    case .followUp(let request): try self.followUp(request)
    case .learn(let request): try self.learn(request)
    case .escalate(let request): try self.escalate(request)
    case .decline(let request): try self.decline(request)
    case .refer(let request): try self.refer(request)
    case .skip(let request): try self.skip(request)
    case .note(let request): try self.note(request)
    case .legal(let request): try self.legal(request)
    case .receipt(let request): try self.receipt(request)
    case .reinvestigate(let request): try self.reinvestigate(request)
    case .reject(let request): try self.reject(request)
    case .withdraw(let request): try self.withdraw(request)
    }
    self.finish()
  }

  // MARK: - Stage bookkeeping

  func progress(_ stage: Redress_V1_Stage) -> Redress_V1_StageProgress {
    self.remedy.stages[Playbook.index(stage)]
  }

  mutating func mark(_ stage: Redress_V1_Stage, _ state: Redress_V1_StageState, notes: String = "", skipReason: String = "") {
    let index = Playbook.index(stage)
    self.remedy.stages[index].state = state
    self.remedy.stages[index].actor = self.actor.name
    self.remedy.stages[index].updatedAt = .init(self.now)
    if !notes.isEmpty { self.remedy.stages[index].notes = notes }
    self.remedy.stages[index].skipReason = skipReason
  }

  mutating func activate(_ stage: Redress_V1_Stage) {
    let index = Playbook.index(stage)
    self.remedy.stages[index].state = .active
    self.remedy.stages[index].updatedAt = .init(self.now)
    self.remedy.currentStage = stage
  }

  /// Every stage from `first` on that is not finished becomes skipped with `reason` (terminal verdicts).
  mutating func skipRemaining(from first: Redress_V1_Stage, reason: String) {
    for stage in Redress_V1_Stage.ordered where stage.rawValue >= first.rawValue {
      let state = self.progress(stage).state
      if state == .pending || state == .active {
        let index = Playbook.index(stage)
        self.remedy.stages[index].state = .skipped
        self.remedy.stages[index].skipReason = reason
        self.remedy.stages[index].updatedAt = .init(self.now)
      }
    }
  }

  func requireOpen(_ doing: String) throws(PlaybookError) {
    guard self.remedy.status == .open else {
      throw .rule("Cannot \(doing): the remedy is \(self.remedy.status.name) and takes no further playbook actions.")
    }
  }

  /// The stage must be the active one; otherwise the message names what must happen first.
  func requireActive(_ stage: Redress_V1_Stage, _ doing: String) throws(PlaybookError) {
    switch self.progress(stage).state {
    case .active:
      return
    case .done:
      throw .rule("Cannot \(doing): the \(stage.name) stage is already done.")
    case .skipped:
      throw .rule("Cannot \(doing): the \(stage.name) stage was skipped (\(self.progress(stage).skipReason)).")
    default:
      let first = Playbook.nextAction(for: self.remedy)
      throw .rule("Cannot \(doing) yet: the \(self.remedy.currentStage.name) stage comes first. Next: \(first)")
    }
  }

  /// The remedy's currency: every amount in its actions must be in it.
  var currency: String { self.remedy.compensation.budget.currency }

  /// Checks a text field: present when `required`, at most `max` UTF-8 bytes, and free of control and bidi
  /// override characters (short fields, up to ``maxShort``, must be one line; longer ones may break lines).
  static func check(_ text: String, _ field: String, required: Bool = true, max: Int = maxText, into violations: inout FieldViolations) {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if required && trimmed.isEmpty {
      violations.add(field, "is required")
    } else if text.utf8.count > max {
      violations.add(field, "must be at most \(max) bytes (got \(text.utf8.count))")
    } else {
      violations.checkCharacters(text, field, max <= Self.maxShort ? .line : .multiline)
    }
  }

  /// Words that name a group of people rather than a person: an owner answers for the work by name.
  static let teamWords: Set<String> = [
    "team", "teams", "group", "department", "dept", "squad", "crew", "staff", "everyone", "everybody", "all",
    "ops", "operations", "support", "desk", "helpdesk", "unit", "committee", "office", "board", "division",
    "management", "people", "folks", "engineering", "legal", "finance", "warehouse", "sales",
  ]

  /// Checks that `name` names a person: one listed in ``PlaybookPolicy/people`` when that directory is
  /// configured; without it, a name holding none of ``teamWords`` ("content team", "Support", "ops") — a
  /// guess that refuses the obvious team names, which a directory makes exact.
  static func checkPerson(_ name: String, _ field: String, people: Set<String>, into violations: inout FieldViolations) {
    let trimmed = name.trimmingCharacters(in: .whitespaces)
    guard !trimmed.isEmpty else { return }
    // With a directory the names are known: no guessing.
    guard people.isEmpty else {
      if !people.contains(trimmed) {
        violations.add(field, "'\(trimmed)' is not in the people directory (playbook.people): name a person listed there")
      }
      return
    }
    let words = trimmed.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
    if let word = words.first(where: Self.teamWords.contains) {
      violations.add(field, "must name a person, not a team ('\(word)' in '\(trimmed)'): one person answers for it")
    }
  }

  static func isFingerprint(_ text: String) -> Bool {
    guard (1...128).contains(text.utf8.count) else { return false }
    return text.utf8.allSatisfy { byte in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
        || byte == UInt8(ascii: "-")
    }
  }

  mutating func record(_ action: String, _ summary: String, internal isInternal: Bool = false) {
    self.entry.action = action
    self.entry.summary = summary
    self.entry.internal = isInternal
  }

  mutating func addEscalation(kind: String, reason: String) {
    var escalation = Redress_V1_Escalation()
    escalation.at = .init(self.now)
    escalation.by = self.actor.name
    escalation.kind = kind
    escalation.reason = reason
    self.remedy.escalations.append(escalation)
  }

  mutating func finish() {
    self.remedy.version += 1
    self.remedy.updatedAt = .init(self.now)
    self.entry.version = self.remedy.version
    self.entry.at = .init(self.now)
    self.entry.actor = self.actor.name
    self.remedy.timeline.append(self.entry)
    if let active = self.remedy.stages.first(where: { $0.state == .active }) {
      self.remedy.currentStage = active.stage
    }
    if self.remedy.status == .withLegal {
      self.remedy.owner = self.remedy.investigation.legalOwner
    } else if self.progress(.fix).state == .active, !self.remedy.fix.owner.isEmpty {
      self.remedy.owner = self.remedy.fix.owner
    } else if self.actor.has(.operator) {
      self.remedy.owner = self.actor.name
    }
    self.remedy.overdue = Playbook.isOverdue(self.remedy)
    self.remedy.nextAction = Playbook.nextAction(for: self.remedy)
  }

  // MARK: - Ledgers

  static func totals(_ ledger: inout Redress_V1_Ledger) {
    let currency = ledger.budget.currency
    // Items were checked against the budget as they were added, so these sums fit; saturate rather than
    // trap should a stored remedy say otherwise.
    let counted = ledger.items.lazy.filter { $0.state == .issued || $0.state == .awaitingApproval }
    let committed = Redress_V1_Money.sum(counted.map(\.amount.amountMinor)) ?? .max
    let issued = Redress_V1_Money.sum(ledger.items.lazy.filter { $0.state == .issued }.map(\.amount.amountMinor)) ?? .max
    ledger.committed = .init(currency: currency, minor: committed)
    ledger.issued = .init(currency: currency, minor: issued)
  }

  /// Compensation owed: the sum of every accepted offer's compensation terms.
  var compensationOwed: Int64 {
    Playbook.compensationOwed(self.remedy)
  }

  /// Completes the compensate stage once what was offered is issued and nothing awaits approval.
  mutating func completeCompensationIfCovered() -> Bool {
    guard self.progress(.compensate).state == .active else { return false }
    let ledger = self.remedy.compensation
    guard !ledger.items.contains(where: { $0.state == .awaitingApproval }),
      ledger.issued.amountMinor >= self.compensationOwed
    else { return false }
    self.mark(.compensate, .done)
    self.activate(.fix)
    return true
  }
}
