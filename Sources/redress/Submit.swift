import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas
import SwiftProtobuf

struct Submit: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Report a mistake made with a client; prints the incident id.",
    discussion: """
      Give the report with flags, or as JSON (an IncidentReport, proto3 JSON) with --input FILE or --input - \
      for stdin; flags then override fields of the JSON. The submit is retried safely with one idempotency \
      key; pass --idempotency-key to make retries across runs safe too.
      """
  )

  @OptionGroup var connection: ConnectionOptions

  @Option(name: .customLong("input"), help: ArgumentHelp("Read the report as JSON from a file, or - for stdin.", valueName: "path"))
  var jsonPath: String?

  @Option(name: .customLong("customer-id")) var customerID: String?
  @Option(name: .customLong("customer-name")) var customerName: String?
  @Option(help: "Account tier.") var tier: TierArgument?
  @Option(name: .customLong("yearly-value"), help: ArgumentHelp("The client's yearly value, e.g. '250000 USD'.", valueName: "amount"))
  var yearlyValue: MoneyArgument?
  @Option(help: "At most 200 characters.") var title: String?
  @Option(help: "At most 16 KiB.") var description: String?
  @Option var category: CategoryArgument?
  @Option(help: "Where the client raised it.") var channel: ChannelArgument?
  @Option(help: "What the client asks for, in their words.") var demand: String?
  @Option(name: .customLong("demand-amount"), help: ArgumentHelp("The amount asked for, e.g. '120.00 USD'.", valueName: "amount"))
  var demandAmount: MoneyArgument?
  @Option(name: .customLong("occurred-at"), help: ArgumentHelp("When it happened, ISO 8601. [default: when intake receives it]", valueName: "time"))
  var occurredAt: TimestampArgument?
  @Option(name: .customLong("link"), help: "A link (repeatable).") var links: [String] = []
  @Option(name: .customLong("label"), help: "A label (repeatable).") var labels: [String] = []
  @Option(name: .customLong("grouping-key"), help: "Attach to other reports of the same mistake.") var groupingKey: String?
  @Option(name: .customLong("idempotency-key"), help: "Reuse to make a later retry return the same incident.")
  var idempotencyKey: String?
  @Flag(name: .customLong("json"), help: "Print the whole answer as JSON instead of the id.") var jsonOutput = false

  func report() throws -> Redress_V1_IncidentReport {
    var report = Redress_V1_IncidentReport()
    if let jsonPath {
      let data: Data
      if jsonPath == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
      } else {
        guard let contents = FileManager.default.contents(atPath: jsonPath) else {
          throw ValidationError("Cannot read \(jsonPath).")
        }
        data = contents
      }
      do {
        report = try Redress_V1_IncidentReport(jsonUTF8Data: data)
      } catch {
        throw ValidationError("The JSON is not an IncidentReport: \(error)")
      }
    }
    if let customerID { report.customer.id = customerID }
    if let customerName { report.customer.name = customerName }
    if let tier { report.customer.tier = tier.proto }
    if let yearlyValue { report.customer.yearlyValue = yearlyValue.proto }
    if let title { report.title = title }
    if let description { report.description_p = description }
    if let category { report.category = category.proto }
    if let channel { report.channel = channel.proto }
    if let demand { report.demand.text = demand }
    if let demandAmount { report.demand.amount = demandAmount.proto }
    // Without --occurred-at intake records when it received the report; sending "now" instead would make a
    // retry of this command with the same --idempotency-key a different report (ALREADY_EXISTS).
    if let occurredAt {
      report.occurredAt = occurredAt.proto
    }
    report.links += self.links
    report.labels += self.labels
    if let groupingKey { report.groupingKey = groupingKey }
    return report
  }

  func run() async throws {
    let report = try self.report()
    let configuration = try self.connection.clientConfiguration()
    try await Failure.reporting {
      try await withRedressClient(configuration: configuration) { redress in
        let submission = try await redress.submit(report, idempotencyKey: self.idempotencyKey)
        if self.jsonOutput {
          try Output.json(
            Redress_V1_SubmitIncidentResponse.with {
              $0.incident = submission.incident
              $0.replayed = submission.replayed
            }
          )
        } else {
          Output.emit(submission.incident.id)
          if submission.replayed {
            Output.error(["replayed: already submitted with this idempotency key; same incident \(submission.incident.id)"])
          }
        }
      }
    }
  }
}
