public import RedressService
import NIOSSL
import RedressSchemas

extension RemediationConfig {
  /// The configuration keys of the remediation service (flags, `REDRESS_REMEDIATION_<KEY>`, or the JSON
  /// file). docs/REMEDIATION.md lists them with their defaults.
  public enum Keys {
    // Each key's flag, meaning and default are in docs/REMEDIATION.md and `redress-remediation --help`.
    public static let defaultCurrency = "playbook.default_currency"
    // Per currency: `USD=50000,JPY=75000` (minor units). A list replaces the default table for its key.
    public static let compensationBudget = "playbook.compensation_budget"
    public static let approvalThreshold = "playbook.approval_threshold"
    public static let goodwillBudget = "playbook.goodwill_budget"
    public static let groupCompensationBudget = "playbook.group_compensation_budget"
    // For currencies not listed: one amount in minor units.
    public static let compensationBudgetMinor = "playbook.compensation_budget_minor"
    public static let approvalThresholdMinor = "playbook.approval_threshold_minor"
    public static let goodwillBudgetMinor = "playbook.goodwill_budget_minor"
    public static let groupCompensationBudgetMinor = "playbook.group_compensation_budget_minor"
    // Comma-separated names of the people who may own fixes, prevention actions and legal matters.
    public static let people = "playbook.people"
    public static let maxNegotiationRounds = "playbook.max_negotiation_rounds"
    public static let followUpDays = "playbook.follow_up_days"
    public static let followUpRetryHours = "playbook.follow_up_retry_hours"
    public static let publicChannelDivisor = "sla.public_channel_divisor"
    public static let deadlineCheckSeconds = "timers.check_interval_seconds"
    public static let watchBufferedChanges = "watch.buffered_changes"
    public static let webhooksAllowPrivateTargets = "webhooks.allow_private_targets"
    public static let webhooksAllowHTTP = "webhooks.allow_http"
    // A PEM file of extra trust roots for receivers.
    public static let webhooksCA = "webhooks.ca"
    public static let webhooksMaxAttempts = "webhooks.max_attempts"
    public static let webhooksRetryBaseMilliseconds = "webhooks.retry_base_ms"
    public static let webhooksRetryCapSeconds = "webhooks.retry_cap_seconds"
    public static let webhooksTimeoutSeconds = "webhooks.timeout_seconds"
    public static let webhooksPerTenant = "webhooks.max_per_tenant"

    /// `sla.p1.acknowledge_minutes` ... `sla.p4.resolve_minutes`.
    public static func sla(priority: Int, _ target: String) -> String {
      "sla.p\(priority).\(target)_minutes"
    }
  }

  /// ``defaults`` with every key `reader` holds applied; a malformed or out-of-range value throws naming its key.
  public init(reader: SettingsReader) throws {
    var config = RemediationConfig.defaults
    var policy = config.policy
    if let currency = try reader.string(Keys.defaultCurrency) {
      guard Redress_V1_Money.isCurrencyCode(currency) else {
        throw ServiceSettings.SettingsError("\(Keys.defaultCurrency) must be the ISO 4217 code of a currency in use, like USD")
      }
      policy.defaultCurrency = currency
    }
    try Self.readCurrencyLimits(reader, into: &policy)
    if let names = try reader.string(Keys.people) {
      let people = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      guard people.allSatisfy({ $0.utf8.count <= 200 && !$0.contains(where: \.isNewline) }) else {
        throw ServiceSettings.SettingsError("\(Keys.people) must be names separated by commas, each at most 200 bytes")
      }
      policy.people = Set(people)
    }
    policy.maxNegotiationRounds = try Self.positive(reader, Keys.maxNegotiationRounds) ?? policy.maxNegotiationRounds
    // 0 lets the follow-up happen right after the fix (demos, end-to-end tests on a real clock).
    if let days = try reader.int(Keys.followUpDays) {
      guard days >= 0 else { throw ServiceSettings.SettingsError("\(Keys.followUpDays) must be ≥ 0 (days)") }
      policy.followUpDelay = .seconds(days * 86_400)
    }
    if let hours = try Self.positive(reader, Keys.followUpRetryHours) { policy.followUpRetryDelay = .seconds(hours * 3_600) }
    var levels = policy.serviceLevels
    for priority in 1...4 {
      var target =
        switch priority {
        case 1: levels.p1
        case 2: levels.p2
        case 3: levels.p3
        default: levels.p4
        }
      if let minutes = try Self.positive(reader, Keys.sla(priority: priority, "acknowledge")) {
        target.acknowledge = .seconds(minutes * 60)
      }
      if let minutes = try Self.positive(reader, Keys.sla(priority: priority, "resolve")) {
        target.resolve = .seconds(minutes * 60)
      }
      switch priority {
      case 1: levels.p1 = target
      case 2: levels.p2 = target
      case 3: levels.p3 = target
      default: levels.p4 = target
      }
    }
    levels.publicChannelDivisor = try Self.positive(reader, Keys.publicChannelDivisor) ?? levels.publicChannelDivisor
    policy.serviceLevels = levels
    config.policy = policy
    if let seconds = try Self.positive(reader, Keys.deadlineCheckSeconds) { config.deadlineCheckInterval = .seconds(seconds) }
    config.watchBufferedChanges = try Self.positive(reader, Keys.watchBufferedChanges) ?? config.watchBufferedChanges
    try Self.readWebhooks(reader, into: &config.webhooks)
    self = config
  }

  /// The per-currency lists and the amounts for other currencies. A currency listed under one key and not
  /// another takes the other's value from the default table, else from the other-currencies amounts.
  private static func readCurrencyLimits(_ reader: SettingsReader, into policy: inout PlaybookPolicy) throws {
    typealias Limits = PlaybookPolicy.CurrencyLimits
    var other = policy.otherCurrencies
    other.compensationBudgetMinor = try Self.amount(reader, Keys.compensationBudgetMinor) ?? other.compensationBudgetMinor
    other.approvalThresholdMinor = try Self.amount(reader, Keys.approvalThresholdMinor) ?? other.approvalThresholdMinor
    other.goodwillBudgetMinor = try Self.amount(reader, Keys.goodwillBudgetMinor) ?? other.goodwillBudgetMinor
    other.groupCompensationBudgetMinor =
      try Self.amount(reader, Keys.groupCompensationBudgetMinor) ?? other.groupCompensationBudgetMinor
    policy.otherCurrencies = other
    let lists: [(String, WritableKeyPath<Limits, Int64>)] = [
      (Keys.compensationBudget, \.compensationBudgetMinor),
      (Keys.approvalThreshold, \.approvalThresholdMinor),
      (Keys.goodwillBudget, \.goodwillBudgetMinor),
      (Keys.groupCompensationBudget, \.groupCompensationBudgetMinor),
    ]
    var given: [(WritableKeyPath<Limits, Int64>, [String: Int64])] = []
    for (key, path) in lists {
      if let amounts = try reader.currencyAmounts(key) { given.append((path, amounts)) }
    }
    guard !given.isEmpty else { return }
    let defaults = policy.currencies
    let listed = Set(given.flatMap { $0.1.keys })
    var table: [String: Limits] = [:]
    for currency in listed {
      var limits = defaults[currency] ?? other
      for (path, amounts) in given {
        // A key that was given and does not list this currency: that currency has no amount there, so
        // the other-currencies amount applies, not the default table's.
        limits[keyPath: path] = amounts[currency] ?? other[keyPath: path]
      }
      table[currency] = limits
    }
    // Keys that were not given keep the default table for the currencies it lists.
    for (currency, limits) in defaults where table[currency] == nil {
      var merged = limits
      for (path, _) in given { merged[keyPath: path] = other[keyPath: path] }
      table[currency] = merged
    }
    policy.currencies = table
  }

  private static func readWebhooks(_ reader: SettingsReader, into webhooks: inout WebhookConfig) throws {
    webhooks.targets.allowPrivateAddresses = try reader.bool(Keys.webhooksAllowPrivateTargets) ?? false
    webhooks.targets.allowPlainHTTP = try reader.bool(Keys.webhooksAllowHTTP) ?? false
    if let path = try reader.string(Keys.webhooksCA) {
      do {
        webhooks.additionalTrustRoots = try NIOSSLCertificate.fromPEMFile(path)
      } catch {
        throw ServiceSettings.SettingsError("\(Keys.webhooksCA): cannot read PEM certificates from \(path): \(error)")
      }
      guard !webhooks.additionalTrustRoots.isEmpty else {
        throw ServiceSettings.SettingsError("\(Keys.webhooksCA): \(path) holds no PEM certificate")
      }
    }
    if let attempts = try Self.positive(reader, Keys.webhooksMaxAttempts) {
      guard attempts <= 100 else { throw ServiceSettings.SettingsError("\(Keys.webhooksMaxAttempts) must be 1 to 100") }
      webhooks.maxAttempts = attempts
    }
    if let base = try Self.positive(reader, Keys.webhooksRetryBaseMilliseconds) { webhooks.retryBase = .milliseconds(base) }
    if let cap = try Self.positive(reader, Keys.webhooksRetryCapSeconds) { webhooks.retryCap = .seconds(cap) }
    if let timeout = try Self.positive(reader, Keys.webhooksTimeoutSeconds) {
      guard timeout <= 60 else { throw ServiceSettings.SettingsError("\(Keys.webhooksTimeoutSeconds) must be 1 to 60") }
      webhooks.requestTimeout = .seconds(timeout)
      // The claim outlives the attempt with room to record its outcome.
      webhooks.lease = .seconds(max(60, timeout * 3))
    }
    webhooks.maxSubscriptionsPerTenant = try Self.positive(reader, Keys.webhooksPerTenant) ?? webhooks.maxSubscriptionsPerTenant
  }

  private static func amount(_ reader: SettingsReader, _ key: String) throws -> Int64? {
    guard let value = try reader.int(key) else { return nil }
    guard value >= 0, Int64(value) <= Redress_V1_Money.maxAmountMinor else {
      throw ServiceSettings.SettingsError("\(key) must be 0 to \(Redress_V1_Money.maxAmountMinor) (minor units, e.g. cents)")
    }
    return Int64(value)
  }

  private static func positive(_ reader: SettingsReader, _ key: String) throws -> Int? {
    guard let value = try reader.int(key) else { return nil }
    guard value > 0 else { throw ServiceSettings.SettingsError("\(key) must be a positive integer") }
    return value
  }
}
