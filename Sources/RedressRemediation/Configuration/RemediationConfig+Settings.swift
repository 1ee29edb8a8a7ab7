public import RedressService
import RedressSchemas

extension RemediationConfig {
  /// The configuration keys of the remediation service (flags, `REDRESS_REMEDIATION_<KEY>`, or the JSON
  /// file). docs/REMEDIATION.md lists them with their defaults.
  public enum Keys {
    // Each key's flag, meaning and default are in docs/REMEDIATION.md and `redress-remediation --help`.
    public static let defaultCurrency = "playbook.default_currency"
    public static let compensationBudgetMinor = "playbook.compensation_budget_minor"
    public static let approvalThresholdMinor = "playbook.approval_threshold_minor"
    public static let goodwillBudgetMinor = "playbook.goodwill_budget_minor"
    public static let maxNegotiationRounds = "playbook.max_negotiation_rounds"
    public static let followUpDays = "playbook.follow_up_days"
    public static let followUpRetryHours = "playbook.follow_up_retry_hours"
    public static let publicChannelDivisor = "sla.public_channel_divisor"
    public static let deadlineCheckSeconds = "timers.check_interval_seconds"
    public static let watchBufferedChanges = "watch.buffered_changes"

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
    policy.compensationBudgetMinor = try Self.amount(reader, Keys.compensationBudgetMinor) ?? policy.compensationBudgetMinor
    policy.approvalThresholdMinor = try Self.amount(reader, Keys.approvalThresholdMinor) ?? policy.approvalThresholdMinor
    policy.goodwillBudgetMinor = try Self.amount(reader, Keys.goodwillBudgetMinor) ?? policy.goodwillBudgetMinor
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
    self = config
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
