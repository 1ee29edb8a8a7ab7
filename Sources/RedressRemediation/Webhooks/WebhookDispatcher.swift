public import Foundation
public import Logging
public import RedressService
public import ServiceLifecycle
import Synchronization
import RedressSchemas

/// Delivers the webhook outbox: claims due deliveries, sends them (``WebhookSender``), records each outcome.
///
/// At least once: a delivery is marked delivered only after its receiver answered 2xx, so a crash between the
/// two sends it again (receivers de-duplicate by event id). One remedy's events reach one subscription in
/// version order: the store hands out only the oldest pending delivery of a (subscription, remedy), so a
/// failing event holds the later ones back until it is delivered or dead-lettered. A failed attempt waits
/// ``WebhookConfig/retryDelay(afterFailures:)`` (or the receiver's `Retry-After`); after
/// ``WebhookConfig/maxAttempts`` the delivery is dead until replayed.
///
/// The service wakes it after each change it commits (``wake()``); otherwise it sleeps until the next
/// delivery is due, at most ``WebhookConfig/pollInterval`` (another replica's changes). Delivered rows are
/// kept ``WebhookConfig/deliveredRetention``, dead ones ``WebhookConfig/deadRetention``; both are pruned hourly.
public final class WebhookDispatcher: Service, Sendable {
  let store: any WebhookStorage
  let sender: WebhookSender
  let config: WebhookConfig
  let metrics: RedressMetrics
  let logger: Logger
  private let signal = WakeSignal()
  private let lastPrune = Mutex<Date>(.distantPast)

  public init(store: any WebhookStorage, config: WebhookConfig, metrics: RedressMetrics, logger: Logger) {
    self.store = store
    self.config = config
    self.sender = WebhookSender(config: config, logger: logger)
    self.metrics = metrics
    self.logger = logger
  }

  /// Look at the outbox now (a change was committed).
  public func wake() {
    self.signal.signal()
  }

  public func run() async throws {
    do {
      try await self.store.releaseWebhookLeases()
    } catch {
      self.logger.warning("could not release webhook leases; they expire on their own", metadata: ["error": "\(error)"])
    }
    await cancelWhenGracefulShutdown {
      var failing = false
      while !Task.isCancelled {
        var wait = self.config.pollInterval
        do {
          let sent = try await self.deliverDue()
          if failing { self.logger.notice("webhook outbox readable again") }
          failing = false
          if sent > 0 { continue }
          await self.prune()
          if let next = try await self.store.nextWebhookDeliveryTime() {
            let until = Duration.milliseconds(Int64(max(0, next.timeIntervalSinceNow) * 1_000))
            wait = min(wait, until)
          }
        } catch is CancellationError {
          break
        } catch {
          if !failing { self.logger.error("webhook outbox unreadable; retrying", metadata: ["error": "\(error)"]) }
          failing = true
        }
        await self.signal.wait(timeout: wait)
      }
    }
  }

  /// Claims and sends one batch of due deliveries; returns how many were sent.
  @discardableResult
  public func deliverDue() async throws -> Int {
    let now = Date()
    let due = try await self.store.claimDueWebhookDeliveries(
      now: now, leaseUntil: now + self.config.lease.timeInterval, limit: self.config.batchSize)
    guard !due.isEmpty else { return 0 }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for delivery in due {
        group.addTask { try await self.attempt(delivery) }
      }
      try await group.waitForAll()
    }
    return due.count
  }

  private func attempt(_ delivery: DueWebhookDelivery) async throws {
    let event = delivery.event
    let body: Data
    do {
      body = try WebhookEvents.body(of: event)
    } catch {
      try await self.store.recordWebhookAttempt(seq: delivery.seq, .dead(status: 0, error: "could not encode the event: \(error)"))
      return
    }
    let attempt = delivery.attempts + 1
    let result = await self.sender.send(
      url: delivery.webhook.url, body: body, eventID: delivery.eventID, eventType: event.type, attempt: attempt,
      secrets: delivery.webhook.signingSecrets(at: Date()))
    self.metrics.recordDuration("redress_webhook_attempt_duration_seconds", [], result.duration)
    let outcome: WebhookAttemptOutcome
    let label: String
    if result.error == nil {
      outcome = .delivered(status: result.status, at: Date())
      label = "delivered"
    } else if attempt >= self.config.maxAttempts {
      outcome = .dead(status: result.status, error: result.error ?? "")
      label = "dead"
      self.logger.warning(
        "webhook delivery dead-lettered",
        metadata: [
          "delivery": "\(WebhookDeliveryID.make(delivery.seq))", "webhook": "\(delivery.webhook.id)",
          "tenant": "\(delivery.webhook.tenant)", "attempts": "\(attempt)", "error": "\(result.error ?? "")",
        ])
    } else {
      let delay = result.retryAfter ?? self.config.retryDelay(afterFailures: attempt)
      outcome = .retry(status: result.status, error: result.error ?? "", next: Date() + delay.timeInterval)
      label = "failed"
    }
    self.metrics.increment("redress_webhook_attempts_total", [("outcome", label)])
    try await self.store.recordWebhookAttempt(seq: delivery.seq, outcome)
  }

  /// Deletes old delivered and dead deliveries, at most once an hour.
  private func prune() async {
    let now = Date()
    let due = self.lastPrune.withLock { last -> Bool in
      guard now.timeIntervalSince(last) >= 3_600 else { return false }
      last = now
      return true
    }
    guard due else { return }
    do {
      let removed = try await self.store.pruneWebhookDeliveries(
        deliveredBefore: now - self.config.deliveredRetention.timeInterval,
        deadBefore: now - self.config.deadRetention.timeInterval)
      if removed > 0 { self.logger.info("pruned old webhook deliveries", metadata: ["count": "\(removed)"]) }
    } catch {
      self.logger.warning("could not prune webhook deliveries", metadata: ["error": "\(error)"])
    }
  }
}

/// Wakes one waiting task, or the next one to wait when nobody is waiting (a signal is never lost, and
/// several signals before a wait count as one).
final class WakeSignal: Sendable {
  private struct State {
    var pending = false
    var waiter: CheckedContinuation<Void, Never>?
  }
  private let state = Mutex(State())

  func signal() {
    let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
      if let waiter = state.waiter {
        state.waiter = nil
        return waiter
      }
      state.pending = true
      return nil
    }
    waiter?.resume()
  }

  /// Returns when signalled (also by a signal since the last wait), after `timeout`, or when cancelled.
  func wait(timeout: Duration) async {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { try? await Task.sleep(for: timeout) }
      group.addTask { await self.next() }
      await group.next()
      group.cancelAll()
    }
  }

  private func next() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        // Checked under the lock: a cancellation either came before (seen here) or finds the waiter stored.
        let now = self.state.withLock { state -> Bool in
          if state.pending {
            state.pending = false
            return true
          }
          if Task.isCancelled { return true }
          state.waiter = continuation
          return false
        }
        if now { continuation.resume() }
      }
    } onCancel: {
      let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
        defer { state.waiter = nil }
        return state.waiter
      }
      waiter?.resume()
    }
  }
}
