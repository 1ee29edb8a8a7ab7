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
/// Amounts are in the minor unit of the remedy's currency: the incident demand's currency, else the customer's
/// yearly value currency, else ``defaultCurrency``.
public struct PlaybookPolicy: Sendable, Hashable {
  /// The currency of remedies whose incident names none (ISO 4217, upper case).
  public var defaultCurrency: String
  /// The most compensation (issued plus awaiting approval) one remedy may commit, in minor units.
  public var compensationBudgetMinor: Int64
  /// A compensation item above this amount (minor units) waits for approval by a second identity with the
  /// approver role; at or below it is issued at once.
  public var approvalThresholdMinor: Int64
  /// The most goodwill one remedy may give, in minor units (a ledger and budget of its own).
  public var goodwillBudgetMinor: Int64
  /// After this many rejected or countered offers in one negotiation the remedy escalates, and the next offer
  /// needs the approver role.
  public var maxNegotiationRounds: Int
  /// How long after the client confirms the fix the follow-up call is scheduled.
  public var followUpDelay: Duration
  /// How long after an unreachable follow-up the call is rescheduled.
  public var followUpRetryDelay: Duration
  /// Time to acknowledge and to resolve, per priority.
  public var serviceLevels: ServiceLevels

  /// A policy with every value given; prefer changing ``defaults``.
  public init(
    defaultCurrency: String,
    compensationBudgetMinor: Int64,
    approvalThresholdMinor: Int64,
    goodwillBudgetMinor: Int64,
    maxNegotiationRounds: Int,
    followUpDelay: Duration,
    followUpRetryDelay: Duration,
    serviceLevels: ServiceLevels
  ) {
    self.defaultCurrency = defaultCurrency
    self.compensationBudgetMinor = compensationBudgetMinor
    self.approvalThresholdMinor = approvalThresholdMinor
    self.goodwillBudgetMinor = goodwillBudgetMinor
    self.maxNegotiationRounds = maxNegotiationRounds
    self.followUpDelay = followUpDelay
    self.followUpRetryDelay = followUpRetryDelay
    self.serviceLevels = serviceLevels
  }

  /// USD; a 500.00 compensation budget; approval above 100.00; a 100.00 goodwill budget; escalation after 3
  /// rounds; follow-up 3 days after the fix, retried a day after an unreachable call; ``ServiceLevels/defaults``.
  public static var defaults: Self {
    Self(
      defaultCurrency: "USD",
      compensationBudgetMinor: 50_000,
      approvalThresholdMinor: 10_000,
      goodwillBudgetMinor: 10_000,
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
