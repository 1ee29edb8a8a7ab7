import Foundation
import RedressSchemas
import RedressService

/// What a committed playbook action adds to the remediation metrics beyond the action count: how long the client
/// waited for an answer and for the remedy's end, money issued, follow-up outcomes (docs/OPERATIONS.md).
/// Derived from the remedy before and after the change, like ``WebhookEvents``.
enum RemedyMeasures {
  static let timeToAcknowledge = "redress_remediation_time_to_acknowledge_seconds"
  static let timeToResolve = "redress_remediation_time_to_resolve_seconds"

  /// Playbook-scale buckets for the two durations.
  static let buckets: [String: [Duration]] = [
    Self.timeToAcknowledge: RedressMetrics.playbookBuckets, Self.timeToResolve: RedressMetrics.playbookBuckets,
  ]

  static func record(before: Redress_V1_Remedy, after: Redress_V1_Remedy, at now: Date, into metrics: RedressMetrics) {
    let priority = [("priority", "\(after.priority)")]
    let opened = after.openedAt.date
    if Playbook.awaitsAcknowledgement(before), !Playbook.awaitsAcknowledgement(after) {
      metrics.recordDuration(Self.timeToAcknowledge, priority, Self.duration(from: opened, to: now))
    }
    if before.status == .open, after.status != .open {
      metrics.increment("redress_remediation_remedies_closed_total", [("status", "\(after.status)")])
      if after.status == .resolved {
        metrics.recordDuration(Self.timeToResolve, priority, Self.duration(from: opened, to: now))
      }
    }
    for (kind, beforeLedger, afterLedger) in [
      ("compensation", before.compensation, after.compensation), ("goodwill", before.goodwill, after.goodwill),
    ] {
      let issuedBefore = Set(beforeLedger.items.filter { $0.state == .issued }.map(\.id))
      for item in afterLedger.items where item.state == .issued && !issuedBefore.contains(item.id) {
        // Amounts are bounded by Money.maxAmountMinor (10^13), well inside Int.
        metrics.increment(
          "redress_remediation_issued_minor_total", [("kind", kind), ("currency", item.amount.currency)],
          by: Int(item.amount.amountMinor))
      }
    }
    for attempt in after.followUp.attempts.dropFirst(before.followUp.attempts.count) {
      metrics.increment("redress_remediation_follow_ups_total", [("outcome", "\(attempt.outcome)")])
    }
  }

  private static func duration(from start: Date, to end: Date) -> Duration {
    .milliseconds(Int64(max(0, end.timeIntervalSince(start)) * 1_000))
  }
}
