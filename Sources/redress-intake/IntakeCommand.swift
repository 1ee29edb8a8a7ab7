import ArgumentParser
import Foundation
import Logging
import RedressIntake
import RedressService
import ServiceLifecycle

/// `redress-intake`: the intake service. Everything it does lives in RedressIntake; this only reads
/// configuration and runs the services until SIGTERM or SIGINT.
@main
struct IntakeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "redress-intake",
    abstract: "The Redress intake service: durable, idempotent, triaged incident intake with a hand-off to remediation.",
    discussion: """
      Every option can also come from the environment as REDRESS_INTAKE_<KEY> (e.g. REDRESS_INTAKE_PORT, \
      REDRESS_INTAKE_REMEDIATION_HOST) or from the JSON file given with --config (nested keys, e.g. \
      {"remediation": {"host": "..."}}). Flags win over the environment, which wins over the file. \
      The [config: ...] key of each option is its name in the file. See docs/INTAKE.md.

      SIGTERM or SIGINT: stop accepting calls, finish the calls in flight, stop the outbox, close the store.
      """
  )

  @OptionGroup var server: ServerOptions

  @Option(name: .customLong("remediation-host"), help: "Remediation service host; without it incidents stay awaiting_remediation. [config: remediation.host]")
  var remediationHost: String?

  @Option(name: .customLong("remediation-port"), help: "Remediation service port. [config: remediation.port]")
  var remediationPort: Int?

  @Option(name: .customLong("remediation-cert"), help: ArgumentHelp("Intake's client certificate (PEM) for mutual TLS to remediation. [config: remediation.cert]", valueName: "path"))
  var remediationCert: String?

  @Option(name: .customLong("remediation-key"), help: ArgumentHelp("The private key (PEM) of --remediation-cert. [config: remediation.key]", valueName: "path"))
  var remediationKey: String?

  @Option(name: .customLong("remediation-ca"), help: ArgumentHelp("CA (PEM) remediation's server certificate must chain to. [config: remediation.ca]", valueName: "path"))
  var remediationCA: String?

  @Flag(name: .customLong("remediation-plaintext-for-testing-only"), help: "Call remediation without TLS. Tests only. [config: remediation.plaintext_for_testing_only]")
  var remediationPlaintext = false

  @Option(name: .customLong("review-above"), help: ArgumentHelp("Demand amounts above which an incident needs review, per currency in minor units. [config: triage.review_above; default: USD=50000,EUR=50000,GBP=50000,CHF=50000,JPY=75000]", valueName: "CUR=AMOUNT,..."))
  var reviewAbove: String?

  @Option(name: .customLong("idempotency-retention-hours"), help: "How long idempotency keys are kept; at least 168. [config: idempotency.retention_hours; default: 168]")
  var retentionHours: Int?

  @Option(name: .customLong("max-batch-size"), help: "Most submissions group-committed in one transaction. [config: group_commit.max_batch_size; default: 256]")
  var maxBatchSize: Int?

  @Option(name: .customLong("max-bulk-items"), help: "Most items in one SubmitIncidents call. [config: limits.max_bulk_items; default: 1000]")
  var maxBulkItems: Int?

  @Option(name: .customLong("outbox-initial-backoff-ms"), help: "First retry delay of a failed hand-off to remediation. [config: outbox.initial_backoff_ms; default: 500]")
  var outboxInitialBackoff: Int?

  @Option(name: .customLong("outbox-max-backoff-ms"), help: "Longest retry delay of the hand-off. [config: outbox.max_backoff_ms; default: 60000]")
  var outboxMaxBackoff: Int?

  @Option(name: .customLong("outbox-call-timeout-ms"), help: "Deadline of one OpenRemedy call. [config: outbox.call_timeout_ms; default: 10000]")
  var outboxCallTimeout: Int?

  @Option(name: .customLong("outbox-outage-probe-ms"), help: "While remediation is unreachable, the longest wait before trying again (and redialling): how soon delivery resumes once it answers. [config: outbox.outage_probe_ms; default: 1000]")
  var outboxOutageProbe: Int?

  @Option(name: .customLong("outbox-claim-lease-ms"), help: "With PostgreSQL: how long a replica's claim on the incidents it is delivering keeps other replicas off them (how long a dead replica's incidents wait). [config: outbox.claim_lease_ms; default: 30000]")
  var outboxClaimLease: Int?

  @Option(name: .customLong("import-sqlite"), help: ArgumentHelp("Copy this SQLite database (intake.sqlite) into the empty PostgreSQL database that --database names and exit (stop the SQLite service first).", valueName: "path"))
  var importSQLite: String?

  /// The intake flags that were given, by configuration key.
  private var flagValues: [String: String] {
    var values: [String: String] = [:]
    values[IntakeConfig.Keys.remediationHost] = self.remediationHost
    values[IntakeConfig.Keys.remediationPort] = self.remediationPort.map(String.init)
    values[IntakeConfig.Keys.remediationCert] = self.remediationCert
    values[IntakeConfig.Keys.remediationKey] = self.remediationKey
    values[IntakeConfig.Keys.remediationCA] = self.remediationCA
    values[IntakeConfig.Keys.remediationPlaintext] = self.remediationPlaintext ? "true" : nil
    values[IntakeConfig.Keys.reviewAbove] = self.reviewAbove
    values[IntakeConfig.Keys.retentionHours] = self.retentionHours.map(String.init)
    values[IntakeConfig.Keys.maxBatchSize] = self.maxBatchSize.map(String.init)
    values[IntakeConfig.Keys.maxBulkItems] = self.maxBulkItems.map(String.init)
    values[IntakeConfig.Keys.outboxInitialBackoffMS] = self.outboxInitialBackoff.map(String.init)
    values[IntakeConfig.Keys.outboxMaxBackoffMS] = self.outboxMaxBackoff.map(String.init)
    values[IntakeConfig.Keys.outboxCallTimeoutMS] = self.outboxCallTimeout.map(String.init)
    values[IntakeConfig.Keys.outboxOutageProbeMS] = self.outboxOutageProbe.map(String.init)
    values[IntakeConfig.Keys.outboxClaimLeaseMS] = self.outboxClaimLease.map(String.init)
    return values
  }

  func run() async throws {
    let settings: ServiceSettings
    let config: IntakeConfig
    do {
      settings = try await ServiceSettings.load(
        options: self.server, extraFlags: self.flagValues, service: "intake", defaultPort: 7443)
      config = try IntakeConfig(settings: settings)
    } catch {
      throw ValidationError("\(error)")
    }
    ServiceRunner.bootstrapLogging(level: settings.logLevel, format: settings.logFormat)
    let logger = Logger(label: "redress.intake")
    if let path = self.importSQLite {
      guard let postgres = settings.postgres else {
        throw ValidationError("--import-sqlite needs --database (the PostgreSQL database to copy into)")
      }
      let copied = try await IntakeApplication.importSQLite(at: path, into: postgres, logger: logger)
      print("imported \(copied) incidents from \(path) into \(postgres)")
      return
    }
    if let postgres = settings.postgres {
      logger.info("using PostgreSQL", metadata: ["database": "\(postgres)"])
      try await IntakeApplication.migrate(postgres, logger: logger)
    }
    let tracing = try ServiceTracing.from(endpoint: settings.otlpEndpoint, serviceName: "redress-intake")
    let app = try IntakeApplication(
      config: config,
      directory: settings.directory,
      rateLimit: settings.rateLimit,
      tracer: tracing.tracer,
      logger: logger
    )
    try await ServiceRunner.run(
      name: "redress-intake",
      // The exporter first: stopped last, it flushes the spans of the shutdown too.
      services: (tracing.exporter.map { [$0] } ?? []) + app.services,
      listeningAddress: { try await app.listeningAddress },
      grpcHTTP2Port: { try await app.grpcHTTP2Port },
      metricsPort: { try await app.server.metricsPort },
      logger: logger
    )
  }
}
