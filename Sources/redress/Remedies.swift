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
    @Option(help: "Only remedies owned by this person.") var owner: String?
    @Flag(help: "Only overdue remedies.") var overdue = false
    @Flag(help: "Only recurrences of an earlier lesson.") var recurrences = false
    @Option(name: .customLong("page-size"), help: "1-500.") var pageSize: Int32 = 50
    @Option(name: .customLong("page-token")) var pageToken: String?
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let request = Redress_V1_ListRemediesRequest.with {
        if let owner = self.owner { $0.owner = owner }
        $0.overdueOnly = self.overdue
        $0.recurrencesOnly = self.recurrences
        $0.pageSize = self.pageSize
        if let pageToken = self.pageToken { $0.pageToken = pageToken }
      }
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let page = try await withRedressClient(configuration: configuration) { try await $0.listRemedies(request) }
        if self.json {
          try Output.json(
            Redress_V1_ListRemediesResponse.with {
              $0.remedies = page.items
              $0.nextPageToken = page.nextPageToken ?? ""
            }
          )
          return
        }
        Output.table(
          ["ID", "INCIDENT", "STATUS", "STAGE", "OWNER", "OVERDUE", "NEXT"],
          page.items.map {
            [
              $0.id, $0.incidentID, Output.name($0.status), Output.name($0.currentStage), $0.owner,
              $0.overdue ? "yes" : "", $0.nextAction,
            ]
          }
        )
        if let next = page.nextPageToken {
          Output.emit("")
          Output.emit("more: --page-token \(next)")
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
      ("compensation", Remedies.ledgerSummary(remedy.compensation)),
      ("goodwill", Remedies.ledgerSummary(remedy.goodwill)),
    ])
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
    if !remedy.timeline.isEmpty {
      Output.emit("")
      Output.emit("TIMELINE")
      Output.table(
        ["V", "AT", "BY", "ACTION", "SUMMARY"],
        remedy.timeline.map { ["\($0.version)", Output.date($0.at), $0.actor, $0.action, $0.summary] }
      )
    }
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
