import ArgumentParser
import Foundation
import RedressTestSupport
import GRPCCore
import Logging
import RedressIntake
import RedressSchemas
import RedressService
import RedressWire
import Testing

@Suite("Configuration")
struct ConfigurationTests {
  /// Resolves intake's configuration from command-line style flags, as the executable does.
  func config(_ arguments: [String], extra: [String: String] = [:]) async throws -> IntakeConfig {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("intake-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let identities = directory.appendingPathComponent("identities.json")
    try #"{"identities": []}"#.write(to: identities, atomically: true, encoding: .utf8)
    let options = try ServerOptions.parse(
      ["--plaintext-for-testing-only", "--identities", identities.path, "--data-dir", "/var/lib/intake-test"] + arguments)
    // A service name no environment variable uses, so the machine's environment cannot leak in.
    let settings = try await ServiceSettings.load(
      options: options, extraFlags: extra, service: "intake-config-test", defaultPort: 7443)
    return try IntakeConfig(settings: settings)
  }

  @Test("without intake keys the documented defaults apply")
  func defaults() async throws {
    let config = try await self.config([])
    #expect(config.server.port == 7443)
    #expect(config.storage.databasePath == "/var/lib/intake-test/intake.sqlite")
    #expect(config.idempotency.retention == .seconds(7 * 24 * 3600))
    #expect(config.groupCommit.maxBatchSize == 256)
    #expect(config.limits.maxItemsPerBulkCall == 1000)
    #expect(config.limits.maxPageSize == 500)
    #expect(config.triage.reviewAboveMinor["USD"] == 50_000)
    #expect(config.outbox.remediation == nil)
    #expect(config.outbox.backoff == IntakeConfig.Outbox.defaults.backoff)
    #expect(config.outbox.backoff == .init(initial: .milliseconds(500), maximum: .seconds(60), multiplier: 2, jitter: 0.2))
  }

  @Test("--metrics-port turns the metrics endpoint on at the service's host; it is off by default and needs a port of its own")
  func metricsPort() async throws {
    #expect(try await self.config([]).server.metrics == nil)
    let on = try await self.config(["--host", "0.0.0.0", "--metrics-port", "9100"]).server.metrics
    #expect(on?.host == "0.0.0.0" && on?.port == 9100)
    await #expect(throws: ServiceSettings.SettingsError.self) { try await self.config(["--port", "9000", "--metrics-port", "9000"]) }
    await #expect(throws: ServiceSettings.SettingsError.self) { try await self.config(["--metrics-port", "70000"]) }
  }

  @Test("intake's own keys set the configuration")
  func keys() async throws {
    let config = try await self.config(
      ["--port", "9000"],
      extra: [
        IntakeConfig.Keys.retentionHours: "240",
        IntakeConfig.Keys.maxBatchSize: "64",
        IntakeConfig.Keys.maxBulkItems: "10",
        IntakeConfig.Keys.reviewAbove: "USD=100,SEK=2000",
        IntakeConfig.Keys.outboxInitialBackoffMS: "100",
        IntakeConfig.Keys.outboxMaxBackoffMS: "5000",
        IntakeConfig.Keys.outboxCallTimeoutMS: "1500",
        IntakeConfig.Keys.remediationHost: "remediation.internal",
        IntakeConfig.Keys.remediationPort: "7444",
        IntakeConfig.Keys.remediationPlaintext: "true",
      ])
    #expect(config.server.port == 9000)
    #expect(config.idempotency.retention == .seconds(240 * 3600))
    #expect(config.groupCommit.maxBatchSize == 64)
    #expect(config.limits.maxItemsPerBulkCall == 10)
    #expect(config.triage.reviewAboveMinor == ["USD": 100, "SEK": 2000])
    #expect(config.outbox.backoff.initial == .milliseconds(100))
    #expect(config.outbox.backoff.maximum == .seconds(5))
    #expect(config.outbox.callTimeout == .milliseconds(1500))
    #expect(config.outbox.remediation?.host == "remediation.internal")
    #expect(config.outbox.remediation?.port == 7444)
  }

  @Test(
    "a malformed or unsafe value is an error naming its key",
    arguments: [
      (IntakeConfig.Keys.retentionHours, "100"),
      (IntakeConfig.Keys.retentionHours, "a week"),
      (IntakeConfig.Keys.maxBatchSize, "0"),
      (IntakeConfig.Keys.reviewAbove, "usd=5"),
      (IntakeConfig.Keys.outboxInitialBackoffMS, "90000"),
      (IntakeConfig.Keys.remediationHost, "remediation.internal"),
    ]
  )
  func invalid(key: String, value: String) async throws {
    let error = await #expect(throws: ServiceSettings.SettingsError.self) {
      _ = try await self.config([], extra: [key: value])
    }
    let mentioned = error?.description ?? ""
    #expect(mentioned.contains(key) || (key == IntakeConfig.Keys.remediationHost && mentioned.contains("remediation.port")))
  }

  @Test("mutual TLS to remediation needs intake's certificate, key and CA")
  func remediationNeedsTLSFiles() async throws {
    let error = await #expect(throws: ServiceSettings.SettingsError.self) {
      _ = try await self.config(
        [], extra: [IntakeConfig.Keys.remediationHost: "r", IntakeConfig.Keys.remediationPort: "7444"])
    }
    #expect(error?.description.contains(IntakeConfig.Keys.remediationCert) == true)
  }

  @Test("the application refuses to start without server security or with less than 7 days of key retention")
  func unsafeApplication() throws {
    var config = IntakeConfig.defaults
    config.storage.databasePath = FileManager.default.temporaryDirectory
      .appendingPathComponent("never-\(UUID().uuidString)/intake.sqlite").path
    let noSecurity = #expect(throws: IntakeError.self) {
      _ = try IntakeApplication(
        config: config, directory: try IdentityDirectory(entries: []), rateLimit: nil, logger: Logger(label: "t"))
    }
    #expect(noSecurity?.message.contains("server.security") == true)
    config.server.security = .plaintextForTestingOnly
    config.idempotency.retention = .seconds(3600)
    let shortRetention = #expect(throws: IntakeError.self) {
      _ = try IntakeApplication(
        config: config, directory: try IdentityDirectory(entries: []), rateLimit: nil, logger: Logger(label: "t"))
    }
    #expect(shortRetention?.message.contains("7 days") == true)
  }

  @Test("redress-intake --help documents every option")
  func help() async throws {
    let process = Process()
    process.executableURL = try ChildService.executable()
    process.arguments = ["--help"]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let help = String(decoding: data, as: UTF8.self)
    #expect(process.terminationStatus == 0)
    let options = [
      "--config", "--host", "--port", "--data-dir", "--tls-cert", "--tls-key", "--tls-ca", "--identities",
      "--plaintext-for-testing-only", "--rate-per-second", "--rate-burst", "--log-level", "--remediation-host",
      "--remediation-port", "--remediation-cert", "--remediation-key", "--remediation-ca",
      "--remediation-plaintext-for-testing-only", "--review-above", "--idempotency-retention-hours",
      "--max-batch-size", "--max-bulk-items", "--outbox-initial-backoff-ms", "--outbox-max-backoff-ms",
      "--outbox-call-timeout-ms",
    ]
    for option in options {
      #expect(help.contains(option), "\(option) missing from --help")
    }
    // Every intake option names its configuration key.
    let intakeKeys = [
      "remediation.host", "remediation.port", "remediation.cert", "remediation.key", "remediation.ca",
      "triage.review_above", "idempotency.retention_hours", "group_commit.max_batch_size", "limits.max_bulk_items",
      "outbox.initial_backoff_ms", "outbox.max_backoff_ms", "outbox.call_timeout_ms",
    ]
    for key in intakeKeys {
      #expect(help.replacingOccurrences(of: "\n", with: "").replacingOccurrences(of: " ", with: "").contains(key), "\(key) missing from --help")
    }
  }
}
