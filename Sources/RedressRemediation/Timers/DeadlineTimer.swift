import Logging
import RedressService
public import ServiceLifecycle
import RedressSchemas

/// The service-level timers: finds remedies whose acknowledge, fix or resolve deadline passed, marks the
/// stage overdue and records an escalation as a change on the remedy's timeline; and announces a follow-up
/// call whose scheduled time came (a "follow-up-due" entry).
///
/// Deadlines live in the store (the remedy and an indexed next-deadline column) and each fires once (the mark
/// is stored with the remedy), so a restart neither loses nor re-fires one. Time comes from the injected
/// ``WallClock``; tests call ``checkDeadlines()`` after moving a `ManualWallClock`. As a `Service`, it checks
/// every ``RemediationConfig/deadlineCheckInterval`` and, on graceful shutdown, ends every watch stream so the
/// server can drain.
public final class DeadlineTimer: Service, Sendable {
  private let store: any RemediationStorage
  private let playbook: Playbook
  private let clock: any WallClock
  private let broadcaster: RemedyBroadcaster
  private let interval: Duration
  /// Escalations (docs/OPERATIONS.md).
  private let metrics: RedressMetrics
  /// Called after each deadline change it commits (wakes the webhook dispatcher).
  private let committed: @Sendable () -> Void
  private let logger: Logger

  init(
    store: any RemediationStorage,
    playbook: Playbook,
    clock: any WallClock,
    broadcaster: RemedyBroadcaster,
    interval: Duration,
    metrics: RedressMetrics,
    committed: @escaping @Sendable () -> Void = {},
    logger: Logger
  ) {
    self.metrics = metrics
    self.committed = committed
    self.store = store
    self.playbook = playbook
    self.clock = clock
    self.broadcaster = broadcaster
    self.interval = interval
    self.logger = logger
  }

  /// Marks every deadline that passed by the clock's now; returns the ids of the remedies it escalated.
  @discardableResult
  public func checkDeadlines() async throws -> [String] {
    let now = self.clock.now()
    var escalated: [String] = []
    for id in try await self.store.remediesWithDeadline(atOrBefore: now) {
      guard let (remedy, entry) = try await self.store.checkDeadlines(remedyID: id, at: now, playbook: self.playbook) else {
        continue
      }
      escalated.append(id)
      self.committed()
      if entry.action == "escalate" {
        self.metrics.increment("redress_remediation_escalations_total", [("stage", "\(remedy.currentStage)")])
        self.logger.notice(
          "remedy overdue",
          metadata: ["remedy": "\(id)", "tenant": "\(remedy.tenant)", "version": "\(remedy.version)"]
        )
      } else {
        self.logger.info("follow-up call due", metadata: ["remedy": "\(id)", "tenant": "\(remedy.tenant)"])
      }
      self.broadcaster.publish(.with {
        $0.entry = entry
        $0.remedy = remedy
      })
    }
    return escalated
  }

  /// Checks deadlines at start and every interval until graceful shutdown, then ends every watch stream.
  public func run() async throws {
    await withGracefulShutdownHandler {
      await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
          do {
            try await self.checkDeadlines()
          } catch {
            self.logger.error("deadline check failed; retrying next interval", metadata: ["error": "\(error)"])
          }
          try? await Task.sleep(for: self.interval)
        }
      }
    } onGracefulShutdown: {
      self.broadcaster.close()
    }
    self.broadcaster.close()
  }
}
