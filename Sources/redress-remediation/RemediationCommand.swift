import ArgumentParser
import Foundation
import Logging
import RedressRemediation
import RedressService
import ServiceLifecycle

/// `redress-remediation`: the remediation service. Everything it does lives in RedressRemediation; this only
/// reads configuration and runs the services until SIGTERM or SIGINT.
@main
struct RemediationCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "redress-remediation",
    abstract: "The Redress remediation service: drives each incident through the playbook of making amends.",
    discussion: """
      Every option can also come from the environment as REDRESS_REMEDIATION_<KEY> (e.g. \
      REDRESS_REMEDIATION_PORT, REDRESS_REMEDIATION_PLAYBOOK_MAX_NEGOTIATION_ROUNDS) or from the JSON file given \
      with --config (nested keys, e.g. {"playbook": {"max_negotiation_rounds": 4}}). Flags win over the \
      environment, which wins over the file. The [config: ...] key of each option is its name in the file. \
      Amounts are in the minor unit (cents) of the remedy's currency. See docs/REMEDIATION.md.

      SIGTERM or SIGINT: stop the deadline timer and end watch streams (clients resume), finish the calls in \
      flight, close the store.
      """
  )

  @OptionGroup var server: ServerOptions

  @Option(name: .customLong("default-currency"), help: "Currency of remedies whose incident names none. [config: playbook.default_currency; default: USD]")
  var defaultCurrency: String?

  @Option(name: .customLong("compensation-budget"), help: "Most compensation one remedy may commit, per currency in its minor units. [config: playbook.compensation_budget; default: USD/EUR/GBP/CHF/CAD/AUD=50000,JPY=75000]")
  var compensationBudgets: String?

  @Option(name: .customLong("approval-threshold"), help: "Compensation items above this (per currency, minor units) need approval by a second identity with the approver role. [config: playbook.approval_threshold; default: USD/EUR/GBP/CHF/CAD/AUD=10000,JPY=15000]")
  var approvalThresholds: String?

  @Option(name: .customLong("goodwill-budget"), help: "Most goodwill one remedy may give, per currency in its minor units. [config: playbook.goodwill_budget; default: USD/EUR/GBP/CHF/CAD/AUD=10000,JPY=15000]")
  var goodwillBudgets: String?

  @Option(name: .customLong("group-compensation-budget"), help: "Most compensation the remedies of one group may commit together, per currency. [config: playbook.group_compensation_budget; default: USD/EUR/GBP/CHF/CAD/AUD=500000,JPY=750000]")
  var groupBudgets: String?

  @Option(name: .customLong("compensation-budget-minor"), help: "Compensation budget for a currency not listed, minor units. [config: playbook.compensation_budget_minor; default: 50000]")
  var compensationBudget: Int?

  @Option(name: .customLong("approval-threshold-minor"), help: "Approval threshold for a currency not listed, minor units (0: every item needs an approver). [config: playbook.approval_threshold_minor; default: 0]")
  var approvalThreshold: Int?

  @Option(name: .customLong("goodwill-budget-minor"), help: "Goodwill budget for a currency not listed, minor units. [config: playbook.goodwill_budget_minor; default: 10000]")
  var goodwillBudget: Int?

  @Option(name: .customLong("group-compensation-budget-minor"), help: "Group compensation budget for a currency not listed, minor units. [config: playbook.group_compensation_budget_minor; default: 500000]")
  var groupBudget: Int?

  @Option(name: .customLong("people"), help: "Names (comma-separated) of the people who may own fixes, prevention actions and legal matters; unset: any name that is not a team's. [config: playbook.people]")
  var people: String?

  @Option(name: .customLong("max-negotiation-rounds"), help: "Offers not accepted before the remedy escalates. [config: playbook.max_negotiation_rounds; default: 3]")
  var maxRounds: Int?

  @Option(name: .customLong("follow-up-days"), help: "Days after the client confirms the fix that the follow-up call is due; 0 allows it at once (demos). [config: playbook.follow_up_days; default: 3]")
  var followUpDays: Int?

  @Option(name: .customLong("follow-up-retry-hours"), help: "Hours after an unreachable follow-up that it is rescheduled. [config: playbook.follow_up_retry_hours; default: 24]")
  var followUpRetryHours: Int?

  @OptionGroup var serviceLevels: ServiceLevelOptions

  @OptionGroup var webhooks: WebhookOptions

  @Option(name: .customLong("import-sqlite"), help: ArgumentHelp("Copy this SQLite database (remediation.sqlite) into the empty PostgreSQL database that --database names and exit (stop the SQLite service first).", valueName: "path"))
  var importSQLite: String?

  @Option(name: .customLong("watch-buffered-changes"), help: "Changes a watcher may fall behind before its stream ends (it resumes). [config: watch.buffered_changes; default: 1024]")
  var watchBuffered: Int?

  /// The remediation flags that were given, by configuration key.
  private var flagValues: [String: String] {
    typealias Keys = RemediationConfig.Keys
    var values: [String: String] = [:]
    values[Keys.defaultCurrency] = self.defaultCurrency
    values[Keys.compensationBudgetMinor] = self.compensationBudget.map(String.init)
    values[Keys.approvalThresholdMinor] = self.approvalThreshold.map(String.init)
    values[Keys.goodwillBudgetMinor] = self.goodwillBudget.map(String.init)
    values[Keys.groupCompensationBudgetMinor] = self.groupBudget.map(String.init)
    values[Keys.compensationBudget] = self.compensationBudgets
    values[Keys.approvalThreshold] = self.approvalThresholds
    values[Keys.goodwillBudget] = self.goodwillBudgets
    values[Keys.groupCompensationBudget] = self.groupBudgets
    values[Keys.people] = self.people
    values[Keys.maxNegotiationRounds] = self.maxRounds.map(String.init)
    values[Keys.followUpDays] = self.followUpDays.map(String.init)
    values[Keys.followUpRetryHours] = self.followUpRetryHours.map(String.init)
    values.merge(self.serviceLevels.values) { _, new in new }
    values.merge(self.webhooks.values) { _, new in new }
    values[Keys.watchBufferedChanges] = self.watchBuffered.map(String.init)
    return values
  }

  func run() async throws {
    let settings: ServiceSettings
    let config: RemediationConfig
    do {
      settings = try await ServiceSettings.load(
        options: self.server, extraFlags: self.flagValues, service: "remediation", defaultPort: 7444)
      config = try RemediationConfig(reader: settings.reader)
    } catch {
      throw ValidationError("\(error)")
    }
    ServiceRunner.bootstrapLogging(level: settings.logLevel, format: settings.logFormat)
    let logger = Logger(label: "redress.remediation")
    if let path = self.importSQLite {
      guard let postgres = settings.postgres else {
        throw ValidationError("--import-sqlite needs --database (the PostgreSQL database to copy into)")
      }
      let copied = try await RemediationApplication.importSQLite(at: path, into: postgres, logger: logger)
      print("imported \(copied) remedies from \(path) into \(postgres)")
      return
    }
    if let postgres = settings.postgres {
      logger.info("using PostgreSQL", metadata: ["database": "\(postgres)"])
      try await RemediationApplication.migrate(postgres, logger: logger)
    }
    let tracing = try ServiceTracing.from(endpoint: settings.otlpEndpoint, serviceName: "redress-remediation")
    let app = try RemediationApplication(settings: settings, config: config, tracer: tracing.tracer, logger: logger)
    try await ServiceRunner.run(
      name: "redress-remediation",
      // The exporter first: stopped last, it flushes the spans of the shutdown too.
      services: (tracing.exporter.map { [$0] } ?? []) + app.services,
      listeningAddress: { try await app.listeningAddress },
      grpcHTTP2Port: { try await app.grpcHTTP2Port },
      metricsPort: { try await app.server.metricsPort },
      logger: logger
    )
  }
}
