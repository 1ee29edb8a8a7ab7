public import RedressSchemas

/// Everything the remediation service can be tuned with: the playbook's policy and the timers.
///
/// Start from ``defaults`` and change what differs; docs/REMEDIATION.md lists every key and flag.
public struct RemediationConfig: Sendable {
  /// The playbook's money, negotiation and follow-up rules, and the service levels.
  public var policy: PlaybookPolicy
  /// How often the background timer looks for passed deadlines.
  public var deadlineCheckInterval: Duration
  /// How many changes a watcher may fall behind before its stream ends with `unavailable` (it resumes from
  /// the last version it saw).
  public var watchBufferedChanges: Int
  /// Outbound webhooks: where they may go, retries, timeouts.
  public var webhooks = WebhookConfig()

  /// A configuration with every value given; prefer changing ``defaults``.
  public init(policy: PlaybookPolicy, deadlineCheckInterval: Duration, watchBufferedChanges: Int) {
    self.policy = policy
    self.deadlineCheckInterval = deadlineCheckInterval
    self.watchBufferedChanges = watchBufferedChanges
  }

  /// ``PlaybookPolicy/defaults``, a deadline check every 30 seconds, 1024 buffered changes per watcher.
  public static var defaults: Self {
    Self(policy: .defaults, deadlineCheckInterval: .seconds(30), watchBufferedChanges: 1024)
  }
}

/// The playbook's rules that a business may tune.
///
/// Amounts are in the minor unit (ISO 4217) of the remedy's currency: the incident demand's currency, else the
/// customer's yearly value currency, else ``defaultCurrency``. Budgets and the approval threshold are set per
/// currency (``currencies``); a currency not listed gets ``otherCurrencies``.
public struct PlaybookPolicy: Sendable, Hashable {
  /// The money limits of one currency, in its minor units.
  public struct CurrencyLimits: Sendable, Hashable {
    /// The most compensation (issued plus awaiting approval) one remedy may commit.
    public var compensationBudgetMinor: Int64
    /// A compensation item above this waits for approval by a second identity with the approver role; at or
    /// below it is issued at once (an item off the accepted offer's terms always waits).
    public var approvalThresholdMinor: Int64
    /// The most goodwill one remedy may give (a ledger and budget of its own).
    public var goodwillBudgetMinor: Int64
    /// The most compensation the remedies of one group (many clients, one mistake) may commit together.
    public var groupCompensationBudgetMinor: Int64

    /// Limits with every value given.
    public init(
      compensationBudgetMinor: Int64,
      approvalThresholdMinor: Int64,
      goodwillBudgetMinor: Int64,
      groupCompensationBudgetMinor: Int64
    ) {
      self.compensationBudgetMinor = compensationBudgetMinor
      self.approvalThresholdMinor = approvalThresholdMinor
      self.goodwillBudgetMinor = goodwillBudgetMinor
      self.groupCompensationBudgetMinor = groupCompensationBudgetMinor
    }
  }

  /// The currency of remedies whose incident names none (ISO 4217, upper case).
  public var defaultCurrency: String
  /// Money limits per currency (ISO 4217 code → limits in its minor units).
  public var currencies: [String: CurrencyLimits]
  /// The limits of a currency not in ``currencies``.
  public var otherCurrencies: CurrencyLimits
  /// After this many rejected or countered offers in one negotiation the remedy escalates, and the next offer
  /// needs the approver role.
  public var maxNegotiationRounds: Int
  /// How long after the client confirms the fix the follow-up call is scheduled.
  public var followUpDelay: Duration
  /// How long after an unreachable follow-up the call is rescheduled.
  public var followUpRetryDelay: Duration
  /// Time to acknowledge and to resolve, per priority.
  public var serviceLevels: ServiceLevels
  /// The people who may own a fix, a prevention action or a legal matter; empty: any name that is not a
  /// team's (see `Transition.checkPerson`).
  public var people: Set<String>

  /// A policy with every value given; prefer changing ``defaults``.
  public init(
    defaultCurrency: String,
    currencies: [String: CurrencyLimits],
    otherCurrencies: CurrencyLimits,
    maxNegotiationRounds: Int,
    followUpDelay: Duration,
    followUpRetryDelay: Duration,
    serviceLevels: ServiceLevels,
    people: Set<String> = []
  ) {
    self.defaultCurrency = defaultCurrency
    self.currencies = currencies
    self.otherCurrencies = otherCurrencies
    self.maxNegotiationRounds = maxNegotiationRounds
    self.followUpDelay = followUpDelay
    self.followUpRetryDelay = followUpRetryDelay
    self.serviceLevels = serviceLevels
    self.people = people
  }

  /// The limits of `currency`.
  public func limits(for currency: String) -> CurrencyLimits {
    self.currencies[currency] ?? self.otherCurrencies
  }

  /// The limits for USD, EUR, GBP, CHF, CAD and AUD: a 500.00 compensation budget, approval above 100.00, a
  /// 100.00 goodwill budget, 5,000.00 for a group; for JPY the same at about the same value (¥75,000, ¥15,000,
  /// ¥15,000, ¥750,000).
  public static var defaultCurrencies: [String: CurrencyLimits] {
    let twoDigit = CurrencyLimits(
      compensationBudgetMinor: 50_000,
      approvalThresholdMinor: 10_000,
      goodwillBudgetMinor: 10_000,
      groupCompensationBudgetMinor: 500_000
    )
    var table = Dictionary(uniqueKeysWithValues: ["USD", "EUR", "GBP", "CHF", "CAD", "AUD"].map { ($0, twoDigit) })
    table["JPY"] = CurrencyLimits(
      compensationBudgetMinor: 75_000,
      approvalThresholdMinor: 15_000,
      goodwillBudgetMinor: 15_000,
      groupCompensationBudgetMinor: 750_000
    )
    return table
  }

  /// USD by default; ``defaultCurrencies``; for any other currency 50,000 / 10,000 / 500,000 minor units of
  /// compensation, goodwill and group budget with **every** compensation item waiting for an approver
  /// (threshold 0: nobody set a limit in that currency); escalation after 3 rounds; follow-up 3 days after
  /// the fix, retried a day after an unreachable call; ``ServiceLevels/defaults``; no people directory.
  public static var defaults: Self {
    Self(
      defaultCurrency: "USD",
      currencies: Self.defaultCurrencies,
      otherCurrencies: CurrencyLimits(
        compensationBudgetMinor: 50_000,
        approvalThresholdMinor: 0,
        goodwillBudgetMinor: 10_000,
        groupCompensationBudgetMinor: 500_000
      ),
      maxNegotiationRounds: 3,
      followUpDelay: .seconds(3 * 86_400),
      followUpRetryDelay: .seconds(86_400),
      serviceLevels: .defaults
    )
  }
}

/// Time to acknowledge (the apology) and time to resolve, per priority; shorter for public channels.
public struct ServiceLevels: Sendable, Hashable {
  /// The two targets for one priority, measured from when the remedy opened.
  public struct Target: Sendable, Hashable {
    /// Time from opening until the apology.
    public var acknowledge: Duration
    /// Time from opening until the remedy is resolved.
    public var resolve: Duration

    /// Both targets.
    public init(acknowledge: Duration, resolve: Duration) {
      self.acknowledge = acknowledge
      self.resolve = resolve
    }
  }

  /// Targets for P1, the most pressing.
  public var p1: Target
  /// Targets for P2.
  public var p2: Target
  /// Targets for P3 and for an unspecified priority.
  public var p3: Target
  /// Targets for P4.
  public var p4: Target
  /// A complaint raised on a public channel gets targets divided by this (2 halves them). At least 1.
  public var publicChannelDivisor: Int

  /// Service levels with every target given; prefer changing ``defaults``.
  public init(p1: Target, p2: Target, p3: Target, p4: Target, publicChannelDivisor: Int) {
    self.p1 = p1
    self.p2 = p2
    self.p3 = p3
    self.p4 = p4
    self.publicChannelDivisor = publicChannelDivisor
  }

  /// P1: 1 h / 1 day; P2: 4 h / 3 days; P3: 1 day / 7 days; P4: 3 days / 14 days; halved on public channels.
  public static var defaults: Self {
    let hour = 3_600
    let day = 24 * hour
    return Self(
      p1: Target(acknowledge: .seconds(hour), resolve: .seconds(day)),
      p2: Target(acknowledge: .seconds(4 * hour), resolve: .seconds(3 * day)),
      p3: Target(acknowledge: .seconds(day), resolve: .seconds(7 * day)),
      p4: Target(acknowledge: .seconds(3 * day), resolve: .seconds(14 * day)),
      publicChannelDivisor: 2
    )
  }

  /// The targets for `priority` (an unspecified priority counts as P3) raised on `channel`.
  public func target(priority: Redress_V1_Priority, channel: Redress_V1_Channel) -> Target {
    let base: Target =
      switch priority {
      case .p1: self.p1
      case .p2: self.p2
      case .p4: self.p4
      default: self.p3
      }
    guard channel == .publicSocial else { return base }
    let divisor = max(1, self.publicChannelDivisor)
    return Target(acknowledge: base.acknowledge / divisor, resolve: base.resolve / divisor)
  }
}
