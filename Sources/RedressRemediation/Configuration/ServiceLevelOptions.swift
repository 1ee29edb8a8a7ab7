public import ArgumentParser

/// The service-level flags, shared by `redress-remediation` and `redress dev` (so a demo can shorten the
/// targets exactly as a deployment would): each maps to the configuration key in its help.
public struct ServiceLevelOptions: ParsableArguments, Sendable {
  @Option(name: .customLong("sla-p1-acknowledge-minutes"), help: "P1 time to acknowledge. [config: sla.p1.acknowledge_minutes; default: 60]")
  var p1Acknowledge: Int?
  @Option(name: .customLong("sla-p1-resolve-minutes"), help: "P1 time to resolve. [config: sla.p1.resolve_minutes; default: 1440]")
  var p1Resolve: Int?
  @Option(name: .customLong("sla-p2-acknowledge-minutes"), help: "P2 time to acknowledge. [config: sla.p2.acknowledge_minutes; default: 240]")
  var p2Acknowledge: Int?
  @Option(name: .customLong("sla-p2-resolve-minutes"), help: "P2 time to resolve. [config: sla.p2.resolve_minutes; default: 4320]")
  var p2Resolve: Int?
  @Option(name: .customLong("sla-p3-acknowledge-minutes"), help: "P3 (and unspecified) time to acknowledge. [config: sla.p3.acknowledge_minutes; default: 1440]")
  var p3Acknowledge: Int?
  @Option(name: .customLong("sla-p3-resolve-minutes"), help: "P3 (and unspecified) time to resolve. [config: sla.p3.resolve_minutes; default: 10080]")
  var p3Resolve: Int?
  @Option(name: .customLong("sla-p4-acknowledge-minutes"), help: "P4 time to acknowledge. [config: sla.p4.acknowledge_minutes; default: 4320]")
  var p4Acknowledge: Int?
  @Option(name: .customLong("sla-p4-resolve-minutes"), help: "P4 time to resolve. [config: sla.p4.resolve_minutes; default: 20160]")
  var p4Resolve: Int?

  @Option(name: .customLong("sla-public-channel-divisor"), help: "Service levels of complaints raised on a public channel are divided by this. [config: sla.public_channel_divisor; default: 2]")
  var publicDivisor: Int?

  @Option(name: .customLong("deadline-check-seconds"), help: "How often the timer looks for passed deadlines. [config: timers.check_interval_seconds; default: 30]")
  var deadlineCheckSeconds: Int?

  public init() {}

  /// The flags that were given, by configuration key (read by ``RemediationConfig/init(reader:)``, which
  /// validates them).
  public var values: [String: String] {
    typealias Keys = RemediationConfig.Keys
    var values: [String: String] = [:]
    let sla: [(Int, String, Int?)] = [
      (1, "acknowledge", self.p1Acknowledge), (1, "resolve", self.p1Resolve),
      (2, "acknowledge", self.p2Acknowledge), (2, "resolve", self.p2Resolve),
      (3, "acknowledge", self.p3Acknowledge), (3, "resolve", self.p3Resolve),
      (4, "acknowledge", self.p4Acknowledge), (4, "resolve", self.p4Resolve),
    ]
    for (priority, target, minutes) in sla {
      values[Keys.sla(priority: priority, target)] = minutes.map(String.init)
    }
    values[Keys.publicChannelDivisor] = self.publicDivisor.map(String.init)
    values[Keys.deadlineCheckSeconds] = self.deadlineCheckSeconds.map(String.init)
    return values
  }
}
