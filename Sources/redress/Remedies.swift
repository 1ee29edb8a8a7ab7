import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas

struct Remedies: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Read and watch remedies.",
    subcommands: [Get.self, List.self, Watch.self]
  )

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a remedy: stage, next action, ledgers, timeline.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A remedy id, or an incident id (inc_...).") var id: String
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let remedy = try await withRedressClient(configuration: configuration) { redress in
          self.id.hasPrefix("inc_") ? try await redress.remedy(incidentID: self.id) : try await redress.remedy(id: self.id)
        }
        if self.json {
          try Output.json(remedy)
        } else {
          Remedies.show(remedy)
        }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List remedies.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only remedies with this status (repeatable).") var status: [StatusArgument] = []
    @Option(help: "Only remedies at this stage (repeatable).") var stage: [StageArgument] = []
    @Option(help: "Only remedies of this customer id.") var customer: String?
    @Option(help: "Only remedies owned by this person.") var owner: String?
    @Option(help: "Only the remedies of one mistake's group (the root incident id); prints the group's summary too.")
    var group: String?
    @Flag(help: "Only overdue remedies.") var overdue = false
    @Flag(help: "Only recurrences of an earlier lesson.") var recurrences = false
    @Option(name: .customLong("page-size"), help: "1-500.") var pageSize: Int32 = 50
    @Option(name: .customLong("page-token")) var pageToken: String?
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let request = Redress_V1_ListRemediesRequest.with {
        if let owner = self.owner { $0.owner = owner }
        $0.statuses = self.status.map(\.proto)
        $0.stages = self.stage.map(\.proto)
        if let customer = self.customer { $0.customerID = customer }
        if let group = self.group { $0.groupID = group }
        $0.overdueOnly = self.overdue
        $0.recurrencesOnly = self.recurrences
        $0.pageSize = self.pageSize
        if let pageToken = self.pageToken { $0.pageToken = pageToken }
      }
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let response = try await withRedressClient(configuration: configuration) { try await $0.listRemediesResponse(request) }
        if self.json {
          try Output.json(response)
          return
        }
        Output.table(
          ["ID", "INCIDENT", "CUSTOMER", "STATUS", "STAGE", "OWNER", "OVERDUE", "NEXT"],
          response.remedies.map {
            [
              $0.id, $0.incidentID, $0.customer.id, Output.name($0.status), Output.name($0.currentStage), $0.owner,
              $0.overdue ? "yes" : "", $0.nextAction,
            ]
          }
        )
        if !response.nextPageToken.isEmpty {
          Output.emit("")
          Output.emit("more: --page-token \(response.nextPageToken)")
        }
        if response.hasGroup {
          Output.emit("")
          Remedies.show(response.group)
        }
      }
    }
  }

  struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Follow a remedy live: its state now, then every change as it happens.",
      discussion: "Resumes after a dropped connection without missing a change. Stops on Ctrl-C, or with --until-closed when the remedy is resolved, declined, referred or with legal."
    )

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The remedy id.") var id: String
    @Option(name: .customLong("after-version"), help: "Only changes after this version (no snapshot).") var afterVersion: Int64 = 0
    @Flag(name: .customLong("until-closed"), help: "Exit once the remedy reaches a closed status.") var untilClosed = false
    @Flag(name: .customLong("json"), help: "Print each update as one line of JSON.") var json = false

    func run() async throws {
      var configuration = try self.connection.clientConfiguration()
      configuration.defaultTimeout = .seconds(24 * 60 * 60)
      try await Failure.reporting {
        try await withRedressClient(configuration: configuration) { redress in
          try await redress.watch(remedyID: self.id, afterVersion: self.afterVersion) { updates in
            for try await update in updates {
              let remedy: Redress_V1_Remedy
              switch update.kind {
              case .snapshot(let snapshot):
                remedy = snapshot
                if !self.json {
                  Output.emit("v\(snapshot.version)  \(Output.name(snapshot.status))  stage \(Output.name(snapshot.currentStage))  next: \(snapshot.nextAction)")
                }
              case .change(let change):
                remedy = change.remedy
                if !self.json {
                  Output.emit("v\(change.entry.version)  \(Output.date(change.entry.at))  \(change.entry.actor)  \(change.entry.action): \(change.entry.summary)")
                }
              case .none:
                continue
              }
              if self.json {
                try Output.json(update)
              }
              if self.untilClosed && Remedies.isClosed(remedy) {
                return
              }
            }
          }
        }
      }
    }
  }

  static func isClosed(_ remedy: Redress_V1_Remedy) -> Bool {
    switch remedy.status {
    case .resolved, .declined, .referred, .withLegal: true
    default: false
    }
  }

  static func show(_ group: Redress_V1_GroupSummary) {
    let money = { (amounts: [Redress_V1_Money]) in amounts.map(\.formatted).joined(separator: ", ") }
    Output.emit("GROUP \(group.groupID)\(group.complete ? " (complete: every remedy is closed)" : "")")
    Output.fields([
      ("clients", "\(group.remedies): \(group.open) open, \(group.resolved) resolved, \(group.declined) declined, \(group.referred) referred, \(group.withLegal) with legal"),
      ("reached", "\(group.reached) of \(group.remedies)"),
      ("apologized", "\(group.apologized) of \(group.remedies)"),
      ("compensated", "\(group.compensated) of \(group.remedies)"),
      ("followed up", "\(group.followedUp) of \(group.remedies)"),
      ("shared findings", "\(group.sharedInvestigation) of \(group.remedies)"),
      ("issued", money(group.compensationIssued)),
      ("committed", money(group.compensationCommitted)),
      ("group budget", money(group.budget)),
    ])
  }

  static func show(_ remedy: Redress_V1_Remedy) {
    Output.fields([
      ("id", remedy.id),
      ("incident", remedy.incidentID),
      ("title", remedy.title),
      ("customer", "\(remedy.customer.name) (\(remedy.customer.id))"),
      ("status", Output.name(remedy.status)),
      ("stage", Output.name(remedy.currentStage)),
      ("next", remedy.nextAction),
      ("version", "\(remedy.version)"),
      ("priority", Output.name(remedy.priority)),
      ("owner", remedy.owner),
      ("acknowledge by", Output.date(remedy.acknowledgeBy)),
      ("resolve by", Output.date(remedy.resolveBy)),
      ("overdue", remedy.overdue ? "yes" : ""),
      ("recurrence of", remedy.recurrenceOf),
      ("group", remedy.groupID == remedy.incidentID ? "" : remedy.groupID),
      ("compensation", Remedies.ledgerSummary(remedy.compensation)),
      ("goodwill", Remedies.ledgerSummary(remedy.goodwill)),
    ])
    if remedy.hasReceipt || remedy.hasAcknowledgement {
      Output.emit("")
      Output.emit("CLIENT ANSWERED")
      var answers: [[String]] = []
      if remedy.hasReceipt {
        let receipt = remedy.receipt
        let channel = Output.name(receipt.channel) + (receipt.privateChannel == .unspecified ? "" : " → \(Output.name(receipt.privateChannel))")
        answers.append(["receipt", Output.date(receipt.at), receipt.by, channel, receipt.message])
      }
      if remedy.hasAcknowledgement {
        let apology = remedy.acknowledgement
        answers.append(["apology", Output.date(apology.at), apology.by, Output.name(apology.channel), apology.message])
      }
      Output.table(["WHAT", "AT", "BY", "CHANNEL", "MESSAGE"], answers)
    }
    if remedy.hasInvestigation {
      Output.emit("")
      Output.emit("INVESTIGATION")
      Remedies.show(remedy.investigation)
      for (index, earlier) in remedy.previousInvestigations.enumerated().reversed() {
        Output.emit("")
        Output.emit("EARLIER INVESTIGATION \(index + 1) (replaced)")
        Remedies.show(earlier)
      }
    }
    Output.emit("")
    Output.emit("STAGES")
    Output.table(
      ["STAGE", "STATE", "BY", "DUE", "NOTES"],
      remedy.stages.map {
        [
          Output.name($0.stage), Output.name($0.state) + ($0.overdue ? " (overdue)" : ""), $0.actor,
          Output.date($0.dueAt), $0.skipReason.isEmpty ? $0.notes : "skipped: \($0.skipReason)",
        ]
      }
    )
    if !remedy.offers.isEmpty {
      Output.emit("")
      Output.emit("OFFERS")
      Output.table(
        ["ROUND", "FIX", "ANSWER", "REASON"],
        remedy.offers.map {
          ["\($0.round)", $0.fix, Output.name($0.answer), $0.answerReason.isEmpty ? $0.counterTerms : $0.answerReason]
        }
      )
    }
    for (title, ledger) in [("COMPENSATION", remedy.compensation), ("GOODWILL", remedy.goodwill)] where !ledger.items.isEmpty {
      Output.emit("")
      Output.emit(title)
      Output.table(
        ["ITEM", "KIND", "AMOUNT", "STATE", "REQUESTED BY", "DECIDED BY", "NOTE"],
        ledger.items.map { item in
          let decidedBy = item.approvedBy.isEmpty ? item.decidedBy : item.approvedBy
          var note = item.description_p
          if !item.offTermsReason.isEmpty { note += (note.isEmpty ? "" : "\n") + "off terms: \(item.offTermsReason)" }
          if !item.decisionReason.isEmpty { note += (note.isEmpty ? "" : "\n") + "\(Output.name(item.state)): \(item.decisionReason)" }
          return [
            item.id, item.kind == .unspecified ? "" : Output.name(item.kind), item.amount.formatted, Output.name(item.state),
            item.requestedBy, decidedBy, note,
          ]
        }
      )
    }
    if remedy.hasFix && !remedy.fix.owner.isEmpty {
      Output.emit("")
      Output.emit("FIX")
      Output.fields([
        ("owner", remedy.fix.owner),
        ("due", Output.date(remedy.fix.dueAt)),
        ("done", Output.date(remedy.fix.doneAt)),
        ("verified", remedy.fix.hasVerifiedAt ? "\(Output.date(remedy.fix.verifiedAt)) by \(remedy.fix.verifiedBy)" : ""),
        ("client confirmed", Output.date(remedy.fix.clientConfirmedAt)),
        ("description", remedy.fix.description_p),
      ])
    }
    if !remedy.followUp.attempts.isEmpty {
      Output.emit("")
      Output.emit("FOLLOW-UP")
      Output.table(
        ["AT", "BY", "MEDIUM", "OUTCOME", "NOTES"],
        remedy.followUp.attempts.map {
          [Output.date($0.at), $0.by, Output.name($0.medium), Output.name($0.outcome), $0.notes]
        }
      )
    }
    for (title, history) in [("LEGAL", remedy.legalHistory), ("REFERRAL", remedy.referralHistory)] where !history.isEmpty {
      Output.emit("")
      Output.emit(title)
      Output.table(
        ["AT", "BY", "STATUS"],
        history.map { [Output.date($0.at), $0.by, $0.text + ($0.closed ? "\n(closed)" : "")] }
      )
    }
    if remedy.hasLesson {
      Output.emit("")
      Output.emit("LESSON")
      Output.fields([
        ("lesson", remedy.lesson.lesson),
        ("prevention", remedy.lesson.preventionAction),
        ("prevention owner", remedy.lesson.preventionOwner),
        ("fingerprint", remedy.lesson.fingerprint),
        ("recorded", "\(Output.date(remedy.lesson.recordedAt)) by \(remedy.lesson.recordedBy)"),
      ])
    }
    if !remedy.escalations.isEmpty {
      Output.emit("")
      Output.emit("ESCALATIONS")
      Output.table(
        ["AT", "BY", "KIND", "REASON"],
        remedy.escalations.map { [Output.date($0.at), $0.by, $0.kind, $0.reason] }
      )
    }
    if !remedy.timeline.isEmpty {
      Output.emit("")
      Output.emit("TIMELINE")
      Output.table(
        ["V", "AT", "BY", "ACTION", "SUMMARY"],
        remedy.timeline.map { ["\($0.version)", Output.date($0.at), $0.actor, $0.action, $0.summary] }
      )
    }
  }

  static func show(_ investigation: Redress_V1_Investigation) {
    let extent = investigation.extent
    Output.fields([
      ("verdict", Output.name(investigation.verdict)),
      ("policy clause", investigation.policyClause),
      ("root cause", investigation.rootCause),
      (
        "extent",
        investigation.hasExtent
          ? "\(extent.clientsAffected) client(s), \(extent.ordersAffected) order(s), cost \(extent.costEstimate.formatted)" : ""
      ),
      ("third party", investigation.thirdParty),
      ("legal owner", investigation.legalOwner),
      ("fingerprint", investigation.fingerprint),
      ("why again", investigation.reason),
      ("shared from", investigation.sharedFromRemedyID),
      ("by", investigation.investigatedBy.isEmpty ? "" : "\(investigation.investigatedBy) at \(Output.date(investigation.investigatedAt))"),
      ("notes", investigation.notes),
    ])
  }

  static func ledgerSummary(_ ledger: Redress_V1_Ledger) -> String {
    guard !ledger.items.isEmpty || ledger.hasBudget else { return "" }
    var parts: [String] = []
    if ledger.hasIssued { parts.append("issued \(ledger.issued.formatted)") }
    if ledger.hasCommitted { parts.append("committed \(ledger.committed.formatted)") }
    if ledger.hasBudget { parts.append("budget \(ledger.budget.formatted)") }
    parts.append("\(ledger.items.count) item(s)")
    return parts.joined(separator: ", ")
  }
}
