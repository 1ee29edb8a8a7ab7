public import ServiceLifecycle

/// Keeps the server's health in step with its database: `NOT_SERVING` while a probe of the database fails,
/// `SERVING` again once it succeeds, so a load balancer or orchestrator sends no traffic to a replica that can
/// only answer `UNAVAILABLE`. The probe runs every `interval` (5 s by default, documented in
/// docs/REMEDIATION.md) and gets `timeout` to answer.
public struct DatabaseHealth: Service {
  let health: HealthService
  let interval: Duration
  let timeout: Duration
  let probe: @Sendable () async throws -> Void

  public init(
    health: HealthService,
    interval: Duration = .seconds(5),
    timeout: Duration = .seconds(5),
    probe: @escaping @Sendable () async throws -> Void
  ) {
    self.health = health
    self.interval = interval
    self.timeout = timeout
    self.probe = probe
  }

  public func run() async throws {
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        let ok: Bool
        do {
          try await withDatabaseDeadline(self.timeout) { try await self.probe() }
          ok = true
        } catch {
          ok = false
        }
        if Task.isCancelled { return }
        // Only once the server has said it serves (it sets its own status when it listens and when it drains),
        // and only on a change, so health watchers see each transition once.
        let wanted: HealthService.ServingStatus = ok ? .serving : .notServing
        if let current = self.health.status(), current != wanted {
          self.health.setStatus(wanted)
        }
        try? await Task.sleep(for: self.interval)
      }
    }
  }
}
