import Foundation
import GRPCCore
public import Logging
import RedressSchemas
public import RedressService
import RedressWire
public import ServiceLifecycle
public import Tracing
import RedressTracing

/// Hands every accepted incident to the remediation service's `OpenRemedy`, at least once, over the Redress
/// wire with mutual TLS; a swift-service-lifecycle `Service`.
///
/// The outbox lives in the store, written in the same transaction as the incident, so an acknowledged incident
/// is always delivered eventually, across restarts. Remediation is idempotent on incident id, so a delivery
/// repeated after a crash (remedy opened, not yet recorded) is harmless.
///
/// - New incidents ring the store's doorbell and are delivered at once.
/// - A failed attempt is retried after a capped exponential backoff with jitter, per incident.
/// - When remediation is unreachable, the whole outbox pauses (no point calling once per incident), but for at
///   most ``IntakeConfig/Outbox/outageProbeInterval`` at a time and less when a new incident arrives: the next
///   attempt is the probe, and the connection redials as often, so delivery resumes within about that interval
///   of remediation answering again. Intake keeps accepting; incidents stay `awaiting_remediation`.
/// - `resourceExhausted` with a `retry-after-ms` trailer (a rate limit) is back-pressure, not an outage: the
///   outbox waits what it asks, logs nothing above debug, and does not count the attempt.
/// - The first success after failures makes every waiting incident due again.
public final class RemediationOutbox: Service, Sendable {
  private let store: any IntakeStorage
  private let config: IntakeConfig.Outbox
  private let clock: any WallClock
  /// Each hand-off runs in the submit's stored trace context, with a client span (ClientTracingInterceptor).
  private let tracer: any Tracer
  private let logger: Logger

  /// An outbox delivering `store`'s waiting incidents as `config` says.
  public init(
    store: any IntakeStorage, config: IntakeConfig.Outbox, clock: any WallClock, tracer: any Tracer = NoOpTracer(),
    logger: Logger
  ) {
    self.tracer = tracer
    self.store = store
    self.config = config
    self.clock = clock
    self.logger = logger
  }

  /// Delivers until graceful shutdown; without a remediation address, only waits for shutdown.
  public func run() async throws {
    guard let remediation = self.config.remediation else {
      self.logger.warning("no remediation address configured: incidents stay awaiting_remediation")
      try? await gracefulShutdown()
      return
    }
    var transportConfig = WireClientTransport.Config.defaults(security: remediation.security)
    // Redial at least once per probe interval: a connection backoff grown long during an outage would fail every
    // probe fast and hold recovery back by up to its maximum.
    transportConfig.backoff = self.config.backoff
    transportConfig.backoff.maximum = min(self.config.backoff.maximum, self.config.outageProbeInterval)
    transportConfig.backoff.initial = min(transportConfig.backoff.initial, transportConfig.backoff.maximum)
    let transport = try WireClientTransport(
      host: remediation.host,
      port: remediation.port,
      config: transportConfig,
      logger: self.logger
    )
    try await withGRPCClient(transport: transport, interceptors: [ClientTracingInterceptor(tracer: self.tracer)]) { client in
      let remediationClient = Redress_V1_Remediation.Client(wrapping: client)
      // In-flight calls are abandoned on shutdown: the incident stays in the outbox and is sent again later.
      await cancelWhenGracefulShutdown {
        await self.deliverUntilCancelled(remediationClient)
      }
    }
  }

  private func deliverUntilCancelled(_ client: Redress_V1_Remediation.Client<WireClientTransport>) async {
    var outageFailures = 0
    while !Task.isCancelled {
      do {
        // During an outage each round is one probe: the longest-waiting incident, due or not (every incident's
        // own backoff may have grown past the moment remediation returns).
        let probing = outageFailures > 0
        let now = self.clock.now()
        let due = try await self.store.claimDeliveries(
          dueBy: probing ? .distantFuture : now,
          now: now,
          limit: probing ? 1 : self.config.batchSize,
          leaseUntil: now.addingTimeInterval(IncidentValidator.seconds(self.config.claimLease))
        )
        if due.isEmpty {
          let next = try await self.store.nextDeliveryDue()
          let wait = next.map { max(0, $0.timeIntervalSince(self.clock.now())) } ?? 3600
          await self.store.newIncidents.wait(timeout: .milliseconds(Int64(min(wait, 3600) * 1000) + 1))
          continue
        }
        for delivery in due {
          if Task.isCancelled { return }
          switch await self.deliver(delivery, with: client) {
          case .delivered:
            if outageFailures > 0 {
              self.logger.notice("remediation reachable again; delivering every waiting incident")
              outageFailures = 0
              try await self.store.makeAllDeliveriesDue(now: self.clock.now())
            }
          case .rejected:
            continue
          case .abandoned:
            return
          case .busy(let retryAfter):
            self.logger.debug("remediation asks the outbox to slow down", metadata: ["retry_in": "\(retryAfter)"])
            try await Task.sleep(for: retryAfter)
          case .unreachable(let error):
            outageFailures += 1
            let pause = min(self.config.backoff.delay(attempt: outageFailures), self.config.outageProbeInterval)
            if outageFailures == 1 {
              self.logger.warning(
                "remediation unreachable; incidents wait in the outbox",
                metadata: ["error": "\(error.code)", "probing_every": "\(self.config.outageProbeInterval)"]
              )
            }
            // A new incident cuts the pause short: it is the next probe.
            await self.store.newIncidents.wait(timeout: pause)
          }
          // After a pause, start the round again from the longest-waiting incident.
          if outageFailures > 0 { break }
        }
      } catch is CancellationError {
        return
      } catch {
        if Task.isCancelled { return }
        self.logger.error("outbox store access failed", metadata: ["error": "\(error)"])
        try? await Task.sleep(for: self.config.backoff.maximum)
      }
    }
  }

  private enum Outcome {
    case delivered
    /// Remediation answered with an error about this incident; it is retried later on its own.
    case rejected
    /// Remediation could not be reached (or refused every call): pause the outbox.
    case unreachable(RPCError)
    /// Remediation is over its rate limit for intake: wait this long, then go on (not an outage).
    case busy(retryAfter: Duration)
    /// The outbox is shutting down: nothing was decided about the incident.
    case abandoned
  }

  private func deliver(
    _ delivery: PendingDelivery,
    with client: Redress_V1_Remediation.Client<WireClientTransport>
  ) async -> Outcome {
    var options = CallOptions.defaults
    options.timeout = self.config.callTimeout
    let id = delivery.incident.id
    do {
      let response = try await ServiceContext.withValue(StoredTraceContext.context(from: delivery.traceContext, self.tracer)) {
        try await client.openRemedy(.with { $0.incident = delivery.incident }, options: options)
      }
      try await self.store.recordDelivery(incidentID: id, remedyID: response.remedy.id)
      self.logger.info(
        "incident handed to remediation",
        metadata: ["incident": "\(id)", "remedy": "\(response.remedy.id)", "already_open": "\(response.alreadyOpen)"]
      )
      return .delivered
    } catch {
      // Shutting down: the call was abandoned, not refused; the incident stays due for the next start.
      if Task.isCancelled { return .abandoned }
      let rpcError = (error as? RPCError) ?? RPCError(code: .unknown, message: "\(error)")
      if rpcError.code == .resourceExhausted,
        let milliseconds = rpcError.metadata[stringValues: AuthenticationInterceptor.retryAfterKey]
          .first(where: { _ in true }).flatMap({ Int64($0) })
      {
        // Back-pressure (a rate limit says when to come back): the incident stays due as it is; no attempt is
        // counted against it. Without a retry-after (a size limit) it is retried with backoff like a refusal.
        return .busy(retryAfter: .milliseconds(min(max(milliseconds, 1), 60_000)))
      }
      let attempts = delivery.attempts + 1
      let next = self.clock.now().addingTimeInterval(
        IncidentValidator.seconds(self.config.backoff.delay(attempt: attempts)))
      try? await self.store.recordFailedDelivery(
        incidentID: id, attempts: attempts, nextAttempt: next, error: "\(rpcError.code): \(rpcError.message)")
      switch rpcError.code {
      case .invalidArgument, .failedPrecondition, .notFound, .alreadyExists, .outOfRange, .aborted, .resourceExhausted:
        self.logger.warning(
          "remediation refused an incident; will retry", metadata: ["incident": "\(id)", "error": "\(rpcError.code)"])
        return .rejected
      default:
        return .unreachable(rpcError)
      }
    }
  }
}
