public import RedressSchemas
import GRPCCore

/// The tenant's webhook subscriptions (the `admin` role). docs/OPERATIONS.md lists the event types, the
/// payload and how a receiver checks the `Redress-Signature` header.
extension RedressClient {
  /// Subscribes `url` to `eventTypes` (every type when empty).
  ///
  /// - Returns: The subscription and its signing secret, shown this once. Not retried: a second subscription
  ///   would be made if the first answer was lost (list them to check).
  public func createWebhook(
    url: String,
    eventTypes: [Redress_V1_WebhookEventType] = [],
    clientView: Bool = false,
    description: String = ""
  ) async throws -> Redress_V1_CreateWebhookResponse {
    let request = Redress_V1_CreateWebhookRequest.with {
      $0.url = url
      $0.eventTypes = eventTypes
      $0.clientView = clientView
      $0.description_p = description
    }
    return try await self.retrying(.onlyIfRefused) {
      try await self.webhooks.createWebhook(request, metadata: self.metadata, options: self.callOptions)
    }
  }

  public func listWebhooks() async throws -> [Redress_V1_WebhookSubscription] {
    try await self.retrying(.safe) {
      try await self.webhooks.listWebhooks(.init(), metadata: self.metadata, options: self.callOptions).webhooks
    }
  }

  /// Removes a subscription; returns how many of its deliveries were still waiting (now dropped).
  public func deleteWebhook(id: String) async throws -> Int64 {
    try await self.retrying(.onlyIfRefused) {
      try await self.webhooks.deleteWebhook(.with { $0.webhookID = id }, metadata: self.metadata, options: self.callOptions)
        .droppedDeliveries
    }
  }

  /// A new signing secret, shown this once; the previous one still signs for `keepPreviousSeconds` (0: a day).
  public func rotateWebhookSecret(id: String, keepPreviousSeconds: Int64 = 0) async throws -> Redress_V1_CreateWebhookResponse {
    let request = Redress_V1_RotateWebhookSecretRequest.with {
      $0.webhookID = id
      $0.keepPreviousSeconds = keepPreviousSeconds
    }
    return try await self.retrying(.onlyIfRefused) {
      try await self.webhooks.rotateWebhookSecret(request, metadata: self.metadata, options: self.callOptions)
    }
  }

  /// Sends a `webhook.test` event now and reports the receiver's answer.
  public func testWebhook(id: String) async throws -> Redress_V1_TestWebhookResponse {
    try await self.retrying(.onlyIfRefused) {
      try await self.webhooks.testWebhook(.with { $0.webhookID = id }, metadata: self.metadata, options: self.callOptions)
    }
  }

  /// A page of a subscription's deliveries, newest first.
  public func webhookDeliveries(_ request: Redress_V1_ListWebhookDeliveriesRequest) async throws -> Page<Redress_V1_WebhookDelivery> {
    let response = try await self.retrying(.safe) {
      try await self.webhooks.listWebhookDeliveries(request, metadata: self.metadata, options: self.callOptions)
    }
    return Page(items: response.deliveries, nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken)
  }

  /// Sends deliveries again (every dead one when `deliveryIDs` is empty); returns how many.
  public func replayWebhookDeliveries(webhookID: String, deliveryIDs: [String] = []) async throws -> Int64 {
    let request = Redress_V1_ReplayWebhookDeliveriesRequest.with {
      $0.webhookID = webhookID
      $0.deliveryIds = deliveryIDs
    }
    return try await self.retrying(.safe) {
      try await self.webhooks.replayWebhookDeliveries(request, metadata: self.metadata, options: self.callOptions).replayed
    }
  }
}
