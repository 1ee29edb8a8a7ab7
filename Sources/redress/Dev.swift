import ArgumentParser
import Foundation
import Logging
import NIOSSL
import RedressIntake
import RedressPKI
import RedressRemediation
import RedressService
import RedressWire
import ServiceLifecycle

/// `redress dev`: both services on this machine, on the embedded SQLite default, with development
/// certificates and tokens made on first run.
struct Dev: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run intake and remediation locally with embedded SQLite; no setup needed.",
    discussion: """
      On first run this creates, under the data directory: a development CA and certificates (pki/), tokens \
      for the dev identities operator, approver, legal, client-tool and metrics (tokens.json), the identities both \
      services load (identities.json), and the CLI profile (client.json) that every other redress command \
      reads by default. Later runs reuse them and the databases. Intake hands incidents to remediation over \
      mutual TLS. Ctrl-C (or SIGTERM) shuts both down cleanly.
      """
  )

  @Option(name: .customLong("data-dir"), help: ArgumentHelp("Where databases, certificates and tokens live.", valueName: "path"))
  var dataDirectory = "redress-data"

  @Option(name: .customLong("intake-port"), help: "Intake's port; 0 picks a free one.")
  var intakePort = 7443

  @Option(name: .customLong("remediation-port"), help: "Remediation's port; 0 picks a free one.")
  var remediationPort = 7444

  @Option(name: .customLong("intake-grpc-port"), help: "Intake's standard gRPC over HTTP/2 port (for grpcio, grpc-go, grpcurl…); 0 picks a free one.")
  var intakeGRPCPort = 7445

  @Option(name: .customLong("remediation-grpc-port"), help: "Remediation's standard gRPC over HTTP/2 port; 0 picks a free one.")
  var remediationGRPCPort = 7446

  @Flag(name: .customLong("no-grpc"), help: "Serve only the Redress wire, no standard gRPC over HTTP/2.")
  var noGRPC = false

  @Option(name: .customLong("intake-metrics-port"), help: "Intake's Prometheus metrics (GET /metrics over HTTPS); 0 picks a free one.")
  var intakeMetricsPort = 7447

  @Option(name: .customLong("remediation-metrics-port"), help: "Remediation's Prometheus metrics; 0 picks a free one.")
  var remediationMetricsPort = 7448

  @Flag(name: .customLong("no-metrics"), help: "Serve no metrics endpoints.")
  var noMetrics = false

  @Option(
    name: .customLong("follow-up-days"),
    help: "Days between the client confirming the fix and the follow-up call. 0 here so a demo can finish; services default to 3."
  )
  var followUpDays = 0

  @OptionGroup(title: "Service levels (as redress-remediation takes them; shorten them for a demo)")
  var serviceLevels: ServiceLevelOptions

  @Option(name: .customLong("otlp-endpoint"), help: ArgumentHelp("Export both services' trace spans over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318). Off unless given.", valueName: "url"))
  var otlpEndpoint: String?

  @OptionGroup(title: "Webhooks (as redress-remediation takes them)")
  var webhooks: WebhookOptions

  @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
  var logLevel = "notice"

  @Option(name: .customLong("log-format"), help: "text, or json for one JSON object per line.")
  var logFormat = "text"

  func validate() throws {
    for port in [
      self.intakePort, self.remediationPort, self.intakeGRPCPort, self.remediationGRPCPort, self.intakeMetricsPort,
      self.remediationMetricsPort,
    ] where !(0...65535).contains(port) {
      throw ValidationError("Ports are 0-65535, not \(port).")
    }
    guard LogFormat(rawValue: self.logFormat) != nil else {
      throw ValidationError("--log-format must be text or json.")
    }
    guard Logger.Level(rawValue: self.logLevel) != nil else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
    }
    guard self.followUpDays >= 0 else {
      throw ValidationError("--follow-up-days cannot be negative.")
    }
  }

  func run() async throws {
    let level = Logger.Level(rawValue: self.logLevel) ?? .notice
    ServiceRunner.bootstrapLogging(level: level, format: LogFormat(rawValue: self.logFormat) ?? .text)
    let logger = Logger(label: "redress.dev")
    let data = URL(fileURLWithPath: self.dataDirectory, isDirectory: true)
    // Tokens, keys and databases live here: the owner's alone (a directory that exists keeps its mode).
    try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])

    let (pki, createdPKI) = try DevelopmentPKI.loadOrCreate(in: data.appendingPathComponent("pki", isDirectory: true))
    let tokens = try DevStack.loadOrCreateTokens(in: data)
    let identitiesFile = data.appendingPathComponent("identities.json")
    try DevStack.writeIdentities(tokens: tokens, to: identitiesFile)
    let directory = try IdentityDirectory(contentsOf: identitiesFile)
    if createdPKI {
      Output.emit("Created a development CA and certificates in \(pki.directory.path)")
    }

    let caRoots = try NIOSSLCertificate.fromPEMFile(pki.caCertificate.path)
    func serverSecurity(certificate: URL, key: URL) throws -> ServerSecurity {
      .tls(
        ServerTLS(
          certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.path),
          privateKey: try NIOSSLPrivateKey(file: key.path, format: .pem),
          clientCertificates: .optional,
          trustRoots: caRoots
        )
      )
    }

    // Through the same reader as redress-remediation's flags, so the same values are accepted and refused.
    var remediationConfig: RemediationConfig
    do {
      var values = self.serviceLevels.values
      values.merge(self.webhooks.values) { _, new in new }
      values[RemediationConfig.Keys.followUpDays] = String(self.followUpDays)
      remediationConfig = try RemediationConfig(reader: try await SettingsReader.inMemory(values))
    } catch {
      throw ValidationError("\(error)")
    }
    remediationConfig.policy.followUpDelay = .seconds(self.followUpDays * 24 * 60 * 60)
    let remediationTracing = try ServiceTracing.from(endpoint: self.otlpEndpoint, serviceName: "redress-remediation")
    let intakeTracing = try ServiceTracing.from(endpoint: self.otlpEndpoint, serviceName: "redress-intake")
    let remediation = try RemediationApplication(
      config: remediationConfig,
      server: .init(
        host: "127.0.0.1",
        port: self.remediationPort,
        security: try serverSecurity(certificate: pki.remediationCertificate, key: pki.remediationKey),
        grpcHTTP2: self.noGRPC ? nil : GRPCHTTP2Listener(host: "127.0.0.1", port: self.remediationGRPCPort),
        metrics: self.noMetrics ? nil : MetricsListener(host: "127.0.0.1", port: self.remediationMetricsPort)
      ),
      databasePath: data.appendingPathComponent("remediation.sqlite").path,
      directory: directory,
      rateLimiter: RateLimiter(config: .defaults),
      tracer: remediationTracing.tracer,
      logger: logger
    )

    try await withThrowingDiscardingTaskGroup { group in
      group.addTask {
        try await ServiceRunner.group((remediationTracing.exporter.map { [$0] } ?? []) + remediation.services, logger: logger).run()
      }
      let remediationPort = try await remediation.listeningAddress.port ?? self.remediationPort

      var intakeConfig = IntakeConfig.defaults
      intakeConfig.server = .init(
        host: "127.0.0.1",
        port: self.intakePort,
        security: try serverSecurity(certificate: pki.intakeCertificate, key: pki.intakeKey)
      )
      intakeConfig.server.grpcHTTP2 = self.noGRPC ? nil : GRPCHTTP2Listener(host: "127.0.0.1", port: self.intakeGRPCPort)
      intakeConfig.server.metrics = self.noMetrics ? nil : MetricsListener(host: "127.0.0.1", port: self.intakeMetricsPort)
      intakeConfig.storage = .init(databasePath: data.appendingPathComponent("intake.sqlite").path)
      // Intake calls remediation with its own certificate: mutual TLS between the services.
      intakeConfig.outbox.remediation = .init(
        host: "127.0.0.1",
        port: remediationPort,
        security: .tls(
          ClientTLS(
            trustRoots: caRoots,
            certificateChain: try NIOSSLCertificate.fromPEMFile(pki.intakeCertificate.path),
            privateKey: try NIOSSLPrivateKey(file: pki.intakeKey.path, format: .pem)
          )
        )
      )
      let intake = try IntakeApplication(
        config: intakeConfig,
        directory: directory,
        rateLimit: .defaults,
        tracer: intakeTracing.tracer,
        logger: logger
      )
      group.addTask {
        try await ServiceRunner.group((intakeTracing.exporter.map { [$0] } ?? []) + intake.services, logger: logger).run()
      }
      let intakePort = try await intake.listeningAddress.port ?? self.intakePort
      let intakeGRPC = try await intake.grpcHTTP2Port.map { "127.0.0.1:\($0)" }
      let remediationGRPC = try await remediation.grpcHTTP2Port.map { "127.0.0.1:\($0)" }
      let intakeMetrics = try await intake.server.metricsPort
      let remediationMetrics = try await remediation.server.metricsPort

      let profileFile = data.appendingPathComponent("client.json")
      try DevStack.writeProfile(
        intake: "127.0.0.1:\(intakePort)",
        remediation: "127.0.0.1:\(remediationPort)",
        intakeGRPC: intakeGRPC,
        remediationGRPC: remediationGRPC,
        pki: pki,
        tokens: tokens,
        to: profileFile
      )
      let usesDefaultProfile = profileFile.standardizedFileURL.path
        == URL(fileURLWithPath: Profile.defaultPath).standardizedFileURL.path
      let profileFlag = usesDefaultProfile ? "" : " --profile \(profileFile.path)"
      let grpcLines =
        if let intakeGRPC, let remediationGRPC {
          "  gRPC/HTTP2   intake \(intakeGRPC), remediation \(remediationGRPC) (standard gRPC for other languages; docs/CLIENTS.md)\n"
        } else {
          ""
        }
      let metricsLines =
        if let intakeMetrics, let remediationMetrics {
          "  metrics      https://127.0.0.1:\(intakeMetrics)/metrics, https://127.0.0.1:\(remediationMetrics)/metrics "
            + "(Prometheus; bearer token \"metrics\" in \(data.appendingPathComponent("tokens.json").path); docs/OPERATIONS.md)\n"
        } else {
          ""
        }
      Output.emitText(
        """
        Redress is running (data in \(data.path)):
          intake       127.0.0.1:\(intakePort)
          remediation  127.0.0.1:\(remediationPort)
        \(grpcLines)\(metricsLines)  webhooks     redress webhooks add URL (operator manages them; docs/OPERATIONS.md#webhooks)
          profile      \(profileFile.path) (CA and tokens for \(tokens.keys.sorted().joined(separator: ", ")))

        Report a mistake from another terminal:
          redress submit\(profileFlag) --customer-id c-1042 --customer-name "Harbor Bikes" --tier premium \\
            --title "Shipped blue helmets instead of red" --category wrong-item --channel email \\
            --demand "Swap them this week" --demand-amount "120.00 USD"

        Ctrl-C stops both services.
        ready
        """
      )
    }
  }
}
