public import ArgumentParser

/// The webhook delivery flags of `redress-remediation` and `redress dev`: each maps to the configuration key in
/// its help (docs/OPERATIONS.md, "Webhooks").
public struct WebhookOptions: ParsableArguments, Sendable {
  @Flag(name: .customLong("webhooks-allow-private-targets"), help: "Deliver webhooks to loopback, private and link-local addresses too (development and tests only). [config: webhooks.allow_private_targets; default: false]")
  var allowPrivateTargets = false
  @Flag(name: .customLong("webhooks-allow-http"), help: "Accept plain http:// webhook URLs (development and tests only). [config: webhooks.allow_http; default: false]")
  var allowHTTP = false
  @Option(name: .customLong("webhooks-ca"), help: ArgumentHelp("PEM certificates trusted for webhook receivers besides the system's (a private CA). [config: webhooks.ca]", valueName: "path"))
  var ca: String?
  @Option(name: .customLong("webhooks-max-attempts"), help: "Attempts before a delivery is dead-lettered. [config: webhooks.max_attempts; default: 12]")
  var maxAttempts: Int?
  @Option(name: .customLong("webhooks-retry-base-ms"), help: "Wait after the first failed attempt; doubles per attempt, with jitter. [config: webhooks.retry_base_ms; default: 10000]")
  var retryBase: Int?
  @Option(name: .customLong("webhooks-retry-cap-seconds"), help: "Longest wait between attempts. [config: webhooks.retry_cap_seconds; default: 3600]")
  var retryCap: Int?
  @Option(name: .customLong("webhooks-timeout-seconds"), help: "One attempt, to the receiver's response head. [config: webhooks.timeout_seconds; default: 10]")
  var timeout: Int?
  @Option(name: .customLong("webhooks-per-tenant"), help: "Most webhook subscriptions one tenant may have. [config: webhooks.max_per_tenant; default: 25]")
  var perTenant: Int?

  public init() {}

  /// The flags that were given, by configuration key (read and checked by ``RemediationConfig/init(reader:)``).
  public var values: [String: String] {
    typealias Keys = RemediationConfig.Keys
    var values: [String: String] = [:]
    if self.allowPrivateTargets { values[Keys.webhooksAllowPrivateTargets] = "true" }
    if self.allowHTTP { values[Keys.webhooksAllowHTTP] = "true" }
    values[Keys.webhooksCA] = self.ca
    values[Keys.webhooksMaxAttempts] = self.maxAttempts.map(String.init)
    values[Keys.webhooksRetryBaseMilliseconds] = self.retryBase.map(String.init)
    values[Keys.webhooksRetryCapSeconds] = self.retryCap.map(String.init)
    values[Keys.webhooksTimeoutSeconds] = self.timeout.map(String.init)
    values[Keys.webhooksPerTenant] = self.perTenant.map(String.init)
    return values
  }
}
