import Foundation
import GRPCCore
import GRPCProtobuf
import Logging
import RedressSchemas
import RedressService
import SwiftProtobuf

/// The `redress.v1.Webhooks` RPCs: a tenant's admin manages where its events go (docs/OPERATIONS.md).
///
/// Every RPC needs the `admin` role and touches the caller's tenant only; another tenant's subscription is
/// answered as not found. Secrets are returned by `CreateWebhook` and `RotateWebhookSecret` only, and never
/// logged.
struct WebhooksService: Redress_V1_Webhooks.SimpleServiceProtocol {
  let store: any RemediationStorage
  let config: WebhookConfig
  let sender: WebhookSender
  let clock: any WallClock
  /// The store's error mapping (shared with the remediation RPCs).
  let errors: RemediationService
  let logger: Logger

  /// The longest description, in bytes.
  static let maxDescriptionBytes = 200
  /// The longest a previous secret may stay valid after a rotation.
  static let maxKeepPrevious: Int64 = 7 * 86_400

  func createWebhook(request: Redress_V1_CreateWebhookRequest, context: ServerContext) async throws -> Redress_V1_CreateWebhookResponse {
    let caller = try Caller.require(anyOf: .admin)
    var violations = FieldViolations()
    var target: WebhookTargetPolicy.Target?
    do {
      target = try self.config.targets.parse(request.url)
    } catch {
      violations.add("url", error.reason)
    }
    Self.checkTypes(request.eventTypes, clientView: request.clientView, into: &violations)
    if request.description_p.utf8.count > Self.maxDescriptionBytes {
      violations.add("description", "must be at most \(Self.maxDescriptionBytes) bytes")
    } else if request.description_p.contains(where: \.isNewline) {
      violations.add("description", "must be one line")
    }
    try violations.throwIfAny()
    if let target {
      do {
        _ = try await self.config.targets.resolve(target)
      } catch let refusal as WebhookTargetPolicy.Refusal {
        var violations = FieldViolations()
        violations.add("url", refusal.reason)
        try violations.throwIfAny()
      }
    }
    let now = self.clock.now()
    let webhook = StoredWebhook(
      id: ResourceID.make(prefix: "whk", at: now), tenant: caller.tenant, url: request.url,
      eventMask: Redress_V1_WebhookEventType.mask(of: request.eventTypes), clientView: request.clientView,
      description: request.description_p, createdAt: now, createdBy: caller.name, secret: WebhookSignature.makeSecret(),
      previousSecret: nil, previousExpiresAt: nil)
    do {
      guard try await self.store.createWebhook(webhook, limit: self.config.maxSubscriptionsPerTenant) else {
        throw RPCError(
          code: .resourceExhausted,
          message: "Tenant \(caller.tenant) already has \(self.config.maxSubscriptionsPerTenant) webhooks, the most allowed; delete one first.")
      }
    } catch {
      throw self.errors.rpcError(error)
    }
    self.logger.info("webhook created", metadata: ["webhook": "\(webhook.id)", "tenant": "\(caller.tenant)", "by": "\(caller.name)"])
    return .with {
      $0.webhook = webhook.subscription(at: now)
      $0.signingSecret = webhook.secret
    }
  }

  func listWebhooks(request: Redress_V1_ListWebhooksRequest, context: ServerContext) async throws -> Redress_V1_ListWebhooksResponse {
    let caller = try Caller.require(anyOf: .admin)
    do {
      let now = self.clock.now()
      let webhooks = try await self.store.webhooks(tenant: caller.tenant)
      return .with { $0.webhooks = webhooks.map { $0.subscription(at: now) } }
    } catch {
      throw self.errors.rpcError(error)
    }
  }

  func deleteWebhook(request: Redress_V1_DeleteWebhookRequest, context: ServerContext) async throws -> Redress_V1_DeleteWebhookResponse {
    let caller = try Caller.require(anyOf: .admin)
    try Self.checkID(request.webhookID)
    do {
      guard let dropped = try await self.store.deleteWebhook(id: request.webhookID, tenant: caller.tenant) else {
        throw Self.notFound(request.webhookID, caller)
      }
      self.logger.info("webhook deleted", metadata: ["webhook": "\(request.webhookID)", "tenant": "\(caller.tenant)", "by": "\(caller.name)"])
      return .with { $0.droppedDeliveries = dropped }
    } catch {
      throw self.errors.rpcError(error)
    }
  }

  func rotateWebhookSecret(request: Redress_V1_RotateWebhookSecretRequest, context: ServerContext) async throws -> Redress_V1_CreateWebhookResponse {
    let caller = try Caller.require(anyOf: .admin)
    var violations = FieldViolations()
    violations.checkIdentifier(request.webhookID, "webhook_id")
    if !(0...Self.maxKeepPrevious).contains(request.keepPreviousSeconds) {
      violations.add("keep_previous_seconds", "must be 0 (a day) to \(Self.maxKeepPrevious) (a week)")
    }
    try violations.throwIfAny()
    let now = self.clock.now()
    let keep = request.keepPreviousSeconds == 0 ? 86_400 : request.keepPreviousSeconds
    let secret = WebhookSignature.makeSecret()
    do {
      guard
        let webhook = try await self.store.rotateWebhookSecret(
          id: request.webhookID, tenant: caller.tenant, secret: secret, previousExpiresAt: now + TimeInterval(keep))
      else { throw Self.notFound(request.webhookID, caller) }
      self.logger.info("webhook secret rotated", metadata: ["webhook": "\(webhook.id)", "tenant": "\(caller.tenant)", "by": "\(caller.name)"])
      return .with {
        $0.webhook = webhook.subscription(at: now)
        $0.signingSecret = secret
      }
    } catch {
      throw self.errors.rpcError(error)
    }
  }

  func testWebhook(request: Redress_V1_TestWebhookRequest, context: ServerContext) async throws -> Redress_V1_TestWebhookResponse {
    let caller = try Caller.require(anyOf: .admin)
    try Self.checkID(request.webhookID)
    let webhook: StoredWebhook
    do {
      guard let found = try await self.store.webhook(id: request.webhookID, tenant: caller.tenant) else {
        throw Self.notFound(request.webhookID, caller)
      }
      webhook = found
    } catch {
      throw self.errors.rpcError(error)
    }
    let now = Date()
    let event = Redress_V1_WebhookEvent.with {
      $0.id = ResourceID.make(prefix: "evt_test", at: now)
      $0.type = Redress_V1_WebhookEventType.test.dottedName
      $0.tenant = caller.tenant
      $0.createdAt = .init(date: now)
    }
    let result = await self.sender.send(
      url: webhook.url, body: try WebhookEvents.body(of: event), eventID: event.id, eventType: event.type, attempt: 1,
      secrets: webhook.signingSecrets(at: now))
    return .with {
      $0.httpStatus = Int32(result.status)
      $0.error = result.error ?? ""
      $0.durationMs = Int64(result.duration.components.seconds * 1_000 + result.duration.components.attoseconds / 1_000_000_000_000_000)
      $0.eventID = event.id
    }
  }

  func listWebhookDeliveries(
    request: Redress_V1_ListWebhookDeliveriesRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ListWebhookDeliveriesResponse {
    let caller = try Caller.require(anyOf: .admin)
    var violations = FieldViolations()
    violations.checkIdentifier(request.webhookID, "webhook_id")
    let pageSize = request.pageSize == 0 ? 50 : Int(request.pageSize)
    if !(1...500).contains(pageSize) { violations.add("page_size", "must be 1-500 (0 means 50)") }
    violations.checkFilterCount(request.states.count, "states")
    let states: [Redress_V1_WebhookDeliveryState] = [.pending, .delivered, .dead]
    for (index, state) in request.states.prefix(FieldViolations.maxFilterValues).enumerated() where !states.contains(state) {
      violations.add("states[\(index)]", "must be pending, delivered or dead")
    }
    let fingerprint = PageToken.fingerprint(of: request, tenant: caller.tenant) {
      $0.pageSize = 0
      $0.pageToken = ""
    }
    var token: PageToken?
    do {
      token = try PageToken.decode(request.pageToken, expectedFilters: fingerprint)
    } catch {
      violations.add("page_token", error.reason)
    }
    try violations.throwIfAny()
    do {
      guard
        var deliveries = try await self.store.webhookDeliveries(
          webhookID: request.webhookID, tenant: caller.tenant, states: request.states, beforeSeq: token?.afterSortKey,
          limit: pageSize + 1)
      else { throw Self.notFound(request.webhookID, caller) }
      var next = ""
      if deliveries.count > pageSize {
        deliveries.removeLast()
        if let last = deliveries.last, let seq = WebhookDeliveryID.parse(last.id) {
          next = PageToken(afterSortKey: seq, afterID: last.id, filters: fingerprint).encoded()
        }
      }
      return .with {
        $0.deliveries = deliveries
        $0.nextPageToken = next
      }
    } catch {
      throw self.errors.rpcError(error)
    }
  }

  func replayWebhookDeliveries(
    request: Redress_V1_ReplayWebhookDeliveriesRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ReplayWebhookDeliveriesResponse {
    let caller = try Caller.require(anyOf: .admin)
    var violations = FieldViolations()
    violations.checkIdentifier(request.webhookID, "webhook_id")
    if request.deliveryIds.count > 500 { violations.add("delivery_ids", "lists \(request.deliveryIds.count); at most 500") }
    var seqs: [Int64] = []
    for (index, id) in request.deliveryIds.prefix(500).enumerated() {
      if let seq = WebhookDeliveryID.parse(id) { seqs.append(seq) } else {
        violations.add("delivery_ids[\(index)]", "must be a delivery id like dlv_42 (from ListWebhookDeliveries)")
      }
    }
    try violations.throwIfAny()
    do {
      guard let replayed = try await self.store.replayWebhookDeliveries(webhookID: request.webhookID, tenant: caller.tenant, seqs: seqs)
      else { throw Self.notFound(request.webhookID, caller) }
      self.logger.info(
        "webhook deliveries replayed",
        metadata: ["webhook": "\(request.webhookID)", "tenant": "\(caller.tenant)", "count": "\(replayed)", "by": "\(caller.name)"])
      return .with { $0.replayed = replayed }
    } catch {
      throw self.errors.rpcError(error)
    }
  }

  // MARK: - Validation

  static func checkTypes(_ types: [Redress_V1_WebhookEventType], clientView: Bool, into violations: inout FieldViolations) {
    let subscribable = Set(Redress_V1_WebhookEventType.subscribable)
    if types.count > subscribable.count { violations.add("event_types", "lists \(types.count); at most \(subscribable.count)") }
    var seen: Set<Redress_V1_WebhookEventType> = []
    for (index, type) in types.prefix(subscribable.count + 1).enumerated() {
      if !subscribable.contains(type) {
        violations.add("event_types[\(index)]", "must be an event type (docs/OPERATIONS.md lists them); \(type.dottedName) is not one to subscribe to")
      } else if !seen.insert(type).inserted {
        violations.add("event_types[\(index)]", "repeats \(type.dottedName)")
      } else if clientView, !Redress_V1_WebhookEventType.clientVisible.contains(type) {
        violations.add("event_types[\(index)]", "\(type.dottedName) is a staff matter; a client-view webhook may ask only for what the client sees")
      }
    }
  }

  static func checkID(_ id: String) throws {
    var violations = FieldViolations()
    violations.checkIdentifier(id, "webhook_id")
    try violations.throwIfAny()
  }

  static func notFound(_ id: String, _ caller: Identity) -> RPCError {
    RPCError(code: .notFound, message: "No webhook '\(id)' in tenant \(caller.tenant); `redress webhooks list` shows them.")
  }
}
