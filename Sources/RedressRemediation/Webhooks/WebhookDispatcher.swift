public import Foundation
public import Logging
public import RedressService
public import ServiceLifecycle
import Synchronization
public import Tracing
import RedressTracing
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
/// The service wakes it after each change it commits, and on PostgreSQL after each change another replica
/// notifies (``wake()``); otherwise it sleeps until the next delivery is due, at most
/// ``WebhookConfig/pollInterval`` (a notification lost while the listening connection was down). Delivered rows are
/// kept ``WebhookConfig/deliveredRetention``, dead ones ``WebhookConfig/deadRetention``; both are pruned hourly.
public final class WebhookDispatcher: Service, Sendable {
  let store: any WebhookStorage
  let sender: WebhookSender
  let config: WebhookConfig
  let metrics: RedressMetrics
  /// A client span per attempt, child of the request whose change raised the event.
  let tracer: any Tracer
  let logger: Logger
  private let signal = WakeSignal()
  private let lastPrune = Mutex<Date>(.distantPast)
  /// Attempts running now.
  private let inFlight = Atomic<Int>(0)

  public init(
    store: any WebhookStorage, config: WebhookConfig, metrics: RedressMetrics, tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) {
    self.tracer = tracer
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
      // Attempts run beside the loop, at most `batchSize` at once: a slow receiver holds one slot for up to
      // the request timeout, never the others. Each finished attempt wakes the loop to fill its slot.
      await withDiscardingTaskGroup { group in
        var failing = false
        while !Task.isCancelled {
          var wait = self.config.pollInterval
          let free = self.config.batchSize - self.inFlight.load(ordering: .relaxed)
          if free > 0 {
            do {
              let now = Date()
              let due = try await self.store.claimDueWebhookDeliveries(
                now: now, leaseUntil: now + self.config.lease.timeInterval, limit: free)
              if failing { self.logger.notice("webhook outbox readable again") }
              failing = false
              for delivery in due {
                self.inFlight.add(1, ordering: .relaxed)
                group.addTask {
                  await self.attemptRecorded(delivery)
                  self.inFlight.subtract(1, ordering: .relaxed)
                  self.signal.signal()
                }
              }
              if due.count == free { continue }
              await self.prune()
              if let next = try await self.store.nextWebhookDeliveryTime() {
                wait = min(wait, .milliseconds(Int64(max(0, next.timeIntervalSinceNow) * 1_000)))
              }
            } catch {
              if !failing { self.logger.error("webhook outbox unreadable; retrying", metadata: ["error": "\(error)"]) }
              failing = true
            }
          }
          await self.signal.wait(timeout: wait)
        }
      }
    }
  }

  /// One attempt and its outcome; a store failure leaves the delivery leased, so it is tried again when the
  /// lease ends.
  private func attemptRecorded(_ delivery: DueWebhookDelivery) async {
    do {
      try await self.attempt(delivery)
    } catch {
      self.logger.error(
        "could not record a webhook attempt; it is retried when its claim expires",
        metadata: ["delivery": "\(WebhookDeliveryID.make(delivery.seq))", "error": "\(error)"])
    }
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
    let span = self.tracer.startSpan(
      "webhook \(event.type)", context: StoredTraceContext.context(from: delivery.traceContext, self.tracer), ofKind: .client)
    span.attributes["redress.webhook.id"] = delivery.webhook.id
    span.attributes["redress.webhook.event_id"] = delivery.eventID
    span.attributes["redress.webhook.attempt"] = attempt
    var traceHeaders: [String: String] = [:]
    self.tracer.inject(span.context, into: &traceHeaders, using: DictionaryCarrier())
    let result = await self.sender.send(
      url: delivery.webhook.url, body: body, eventID: delivery.eventID, eventType: event.type, attempt: attempt,
      secrets: delivery.webhook.signingSecrets(at: Date()), traceHeaders: traceHeaders)
    span.attributes["http.response.status_code"] = result.status
    if let error = result.error { span.setStatus(SpanStatus(code: .error, message: error)) }
    span.end()
    // Shutting down cancelled the attempt: it did not fail, so it is not counted. The delivery keeps its claim
    // (released at the next start with SQLite, expired with PostgreSQL) and is sent again.
    if Task.isCancelled, result.error != nil { return }
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
