import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas

struct Incidents: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Read incidents.",
    subcommands: [Get.self, List.self]
  )

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one incident.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The incident id.") var id: String
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let incident = try await withRedressClient(configuration: configuration) { try await $0.incident(id: self.id) }
        if self.json {
          try Output.json(incident)
        } else {
          Incidents.show(incident)
        }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List incidents, newest first.")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .customLong("status"), help: "Filter by status (repeatable).") var statuses: [IncidentStatusArgument] = []
    @Option(name: .customLong("priority"), help: "Filter by priority (repeatable).") var priorities: [PriorityArgument] = []
    @Option(name: .customLong("category"), help: "Filter by category (repeatable).") var categories: [CategoryArgument] = []
    @Option(name: .customLong("customer-id")) var customerID: String?
    @Option(help: ArgumentHelp("Received at or after, ISO 8601.", valueName: "time")) var since: TimestampArgument?
    @Option(help: ArgumentHelp("Received before, ISO 8601.", valueName: "time")) var until: TimestampArgument?
    @Option(name: .customLong("page-size"), help: "1-500.") var pageSize: Int32 = 50
    @Option(name: .customLong("page-token")) var pageToken: String?
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let request = Redress_V1_ListIncidentsRequest.with {
        $0.statuses = self.statuses.map(\.proto)
        $0.priorities = self.priorities.map(\.proto)
        $0.categories = self.categories.map(\.proto)
        if let customerID = self.customerID { $0.customerID = customerID }
        if let since = self.since { $0.receivedAfter = since.proto }
        if let until = self.until { $0.receivedBefore = until.proto }
        $0.pageSize = self.pageSize
        if let pageToken = self.pageToken { $0.pageToken = pageToken }
      }
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let page = try await withRedressClient(configuration: configuration) { try await $0.listIncidents(request) }
        if self.json {
          try Output.json(
            Redress_V1_ListIncidentsResponse.with {
              $0.incidents = page.items
              $0.nextPageToken = page.nextPageToken ?? ""
            }
          )
          return
        }
        Output.table(
          ["ID", "PRIORITY", "STATUS", "CATEGORY", "CUSTOMER", "TITLE"],
          page.items.map {
            [
              $0.id, Output.name($0.triage.priority), Output.name($0.status), Output.name($0.report.category),
              $0.report.customer.id, $0.report.title,
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

  static func show(_ incident: Redress_V1_Incident) {
    let report = incident.report
    var demand = report.demand.text
    if report.demand.hasAmount {
      demand += demand.isEmpty ? report.demand.amount.formatted : " (\(report.demand.amount.formatted))"
    }
    Output.fields([
      ("id", incident.id),
      ("title", report.title),
      ("customer", "\(report.customer.name) (\(report.customer.id))"),
      ("category", Output.name(report.category)),
      ("channel", Output.name(report.channel)),
      ("priority", Output.name(incident.triage.priority)),
      ("needs review", incident.triage.needsReview ? "yes" : ""),
      ("triage", incident.triage.reasons.joined(separator: "; ")),
      ("status", Output.name(incident.status)),
      ("remedy", incident.remedyID),
      ("demand", demand),
      ("occurred", Output.date(report.occurredAt)),
      ("received", Output.date(incident.receivedAt)),
      ("reported by", incident.reportedBy),
      ("group root", incident.groupRootID),
      ("clients affected", incident.clientsAffected > 1 ? "\(incident.clientsAffected)" : ""),
      ("labels", report.labels.joined(separator: ", ")),
    ])
  }
}
