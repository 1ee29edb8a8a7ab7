import Foundation
import GRPCCore
import RedressRemediation
import RedressSchemas
import RedressService
import RedressWire
import Testing
import RedressTestSupport

/// The `redress-remediation` executable and its configuration.
@Suite("redress-remediation")
struct ExecutableTests {
  /// `.build/debug/redress-remediation`, found by searching upward from this file.
  static func executable() throws -> URL {
    var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while directory.path != "/" {
      let candidate = directory.appendingPathComponent(".build/debug/redress-remediation")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      directory.deleteLastPathComponent()
    }
    throw TimedOut(what: "the redress-remediation executable (run swift build first)")
  }

  @Test("--help documents every option with its configuration key")
  func helpDocumentsEveryOption() async throws {
    let process = Process()
    process.executableURL = try Self.executable()
    process.arguments = ["--help"]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    // Help wraps lines; compare with every run of whitespace as one space.
    let help = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined(separator: " ")
    typealias Keys = RemediationConfig.Keys
    var keys = [
      Keys.defaultCurrency, Keys.compensationBudgetMinor, Keys.approvalThresholdMinor, Keys.goodwillBudgetMinor,
      Keys.groupCompensationBudgetMinor, Keys.compensationBudget, Keys.approvalThreshold, Keys.goodwillBudget,
      Keys.groupCompensationBudget, Keys.people,
      Keys.maxNegotiationRounds, Keys.followUpDays, Keys.followUpRetryHours, Keys.publicChannelDivisor,
      Keys.deadlineCheckSeconds, Keys.watchBufferedChanges, "host", "port", "data_dir", "tls.cert", "tls.key", "tls.ca",
      "identities", "plaintext_for_testing_only", "rate.per_second", "rate.burst", "log.level",
      Keys.webhooksAllowPrivateTargets, Keys.webhooksAllowHTTP, Keys.webhooksCA, Keys.webhooksMaxAttempts,
      Keys.webhooksRetryBaseMilliseconds, Keys.webhooksRetryCapSeconds, Keys.webhooksTimeoutSeconds, Keys.webhooksPerTenant,
    ]
    for priority in 1...4 {
      keys += [Keys.sla(priority: priority, "acknowledge"), Keys.sla(priority: priority, "resolve")]
    }
    let undocumented = keys.filter { !help.contains("[config: \($0)") }
    #expect(undocumented == [])
    let options = Set(help.split(separator: " ").filter { $0.hasPrefix("--") && $0.count > 2 }.map { String($0) })
    let documented = help.components(separatedBy: "[config: ").count - 2  // minus the discussion's mention
    // --import-sqlite is a one-off action, not configuration.
    #expect(options.subtracting(["--help", "--config", "--import-sqlite"]).count == documented)
  }

  @Test("configuration keys override the defaults, and a malformed value names its key")
  func configurationKeys() async throws {
    typealias Keys = RemediationConfig.Keys
    let reader = try await SettingsReader.inMemory([
      Keys.compensationBudgetMinor: "80000",
      Keys.compensationBudget: "USD=60000,KWD=150000",
      Keys.approvalThreshold: "KWD=30000",
      Keys.people: "Dana Reyes, Sam Okafor",
      Keys.maxNegotiationRounds: "5",
      Keys.followUpDays: "2",
      Keys.sla(priority: 1, "acknowledge"): "15",
      Keys.publicChannelDivisor: "3",
      Keys.defaultCurrency: "EUR",
    ])
    let config = try RemediationConfig(reader: reader)
    let defaults = RemediationConfig.defaults.policy
    // Other currencies take the *_minor amounts; a list replaces the default table for its key only.
    #expect(config.policy.otherCurrencies.compensationBudgetMinor == 80_000)
    #expect(config.policy.limits(for: "USD").compensationBudgetMinor == 60_000)
    #expect(config.policy.limits(for: "USD").goodwillBudgetMinor == defaults.limits(for: "USD").goodwillBudgetMinor)
    #expect(config.policy.limits(for: "USD").approvalThresholdMinor == defaults.otherCurrencies.approvalThresholdMinor)
    #expect(config.policy.limits(for: "KWD").compensationBudgetMinor == 150_000)
    #expect(config.policy.limits(for: "KWD").approvalThresholdMinor == 30_000)
    #expect(config.policy.limits(for: "JPY").compensationBudgetMinor == 80_000)
    #expect(config.policy.limits(for: "JPY").goodwillBudgetMinor == 15_000)
    #expect(config.policy.limits(for: "XAF") == config.policy.otherCurrencies)
    #expect(config.policy.people == ["Dana Reyes", "Sam Okafor"])
    #expect(config.policy.maxNegotiationRounds == 5)
    #expect(config.policy.followUpDelay == .seconds(2 * 86_400))
    #expect(config.policy.serviceLevels.p1.acknowledge == .seconds(900))
    #expect(config.policy.serviceLevels.p1.resolve == RemediationConfig.defaults.policy.serviceLevels.p1.resolve)
    #expect(config.policy.serviceLevels.publicChannelDivisor == 3)
    #expect(config.policy.defaultCurrency == "EUR")
    #expect(defaults.limits(for: "JPY").compensationBudgetMinor == 75_000)
    #expect(defaults.limits(for: "KWD").approvalThresholdMinor == 0)
    for (key, value) in [(Keys.compensationBudget, "USD=lots"), (Keys.approvalThreshold, "ZZZ=100"), (Keys.goodwillBudget, "USD")] {
      let malformed = try await SettingsReader.inMemory([key: value])
      #expect(throws: ServiceSettings.SettingsError.self) { try RemediationConfig(reader: malformed) }
    }
    let bad = try await SettingsReader.inMemory([Keys.maxNegotiationRounds: "many"])
    #expect(throws: ServiceSettings.SettingsError.self) { try RemediationConfig(reader: bad) }
    let negative = try await SettingsReader.inMemory([Keys.followUpDays: "-1"])
    do {
      _ = try RemediationConfig(reader: negative)
      Issue.record("follow_up_days -1 was accepted")
    } catch {
      #expect("\(error)".contains(Keys.followUpDays))
    }
    // 0 days: the follow-up may happen right after the fix (demos and end-to-end tests on a real clock).
    let zero = try await SettingsReader.inMemory([Keys.followUpDays: "0"])
    #expect(try RemediationConfig(reader: zero).policy.followUpDelay == .zero)
  }

  @Test("the executable serves over TLS with the identities file and exits cleanly on SIGTERM")
  func servesAndStopsOnSIGTERM() async throws {
    let directory = try TemporaryDirectory()
    let pki = RemediationTestPKI.shared
    let certPath = directory.url.appendingPathComponent("server.pem").path
    let keyPath = directory.url.appendingPathComponent("server-key.pem").path
    let caPath = directory.url.appendingPathComponent("ca.pem").path
    try pki.server.write(
      certificateTo: URL(fileURLWithPath: certPath), privateKeyTo: URL(fileURLWithPath: keyPath))
    try pki.ca.certificatePEM().write(toFile: caPath, atomically: true, encoding: .utf8)
    let identitiesPath = directory.url.appendingPathComponent("identities.json").path
    let identities = """
      {"identities": [{"name": "intake-service", "tenant": "acme", "roles": ["service"],
                       "certificate_names": ["intake-service"]}]}
      """
    try identities.write(toFile: identitiesPath, atomically: true, encoding: .utf8)

    let process = Process()
    process.executableURL = try Self.executable()
    process.arguments = [
      "--port", "0", "--data-dir", directory.url.appendingPathComponent("data").path,
      "--tls-cert", certPath, "--tls-key", keyPath, "--tls-ca", caPath, "--identities", identitiesPath,
      "--log-level", "warning", "--max-negotiation-rounds", "4",
    ]
    let output = Pipe()
    process.standardOutput = output
    let exited = AsyncStream<Int32>.makeStream()
    process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
    try process.run()
    defer { if process.isRunning { process.terminate() } }

    let chunks = AsyncStream<String>.makeStream()
    // A blocking read on a worker thread, not `readabilityHandler`: a dispatch source left registered on a
    // pipe whose descriptor is later closed crashes libdispatch (seen in a full-suite run).
    let handle = output.fileHandleForReading
    DispatchQueue.global().async {
      while true {
        let data = handle.availableData
        if data.isEmpty {
          chunks.continuation.finish()
          return
        }
        chunks.continuation.yield(String(decoding: data, as: UTF8.self))
      }
    }
    let port = try await withTimeout(30, "the listening line") { () -> Int in
      var text = ""
      for await chunk in chunks.stream {
        text += chunk
        if let range = text.range(of: "listening on port "), let end = text[range.upperBound...].firstIndex(of: "\n") {
          return Int(text[range.upperBound..<end]) ?? 0
        }
      }
      return 0
    }
    #expect(port > 0)

    let transport = try WireClientTransport(
      host: "127.0.0.1", port: port, config: .defaults(security: try pki.clientSecurity(presenting: pki.intakeService)))
    let opened = try await withGRPCClient(transport: transport) { client in
      try await Redress_V1_Remediation.Client(wrapping: client).openRemedy(
        .with { $0.incident = Incidents.make() }
      )
    }
    #expect(opened.remedy.version == 1)
    #expect(FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("data/remediation.sqlite").path))

    process.terminate()  // SIGTERM
    let status = try await withTimeout(30, "the process to exit") { () -> Int32 in
      for await status in exited.stream { return status }
      return -1
    }
    #expect(status == 0)
  }
}
