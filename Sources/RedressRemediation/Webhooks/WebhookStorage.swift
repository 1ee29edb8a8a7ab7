public import Foundation
public import RedressSchemas

/// A tenant's webhook subscription as stored, with its signing secrets.
public struct StoredWebhook: Sendable, Hashable {
  public var id: String
  public var tenant: String
  public var url: String
  /// ``Redress_V1_WebhookEventType/mask(of:)`` of the subscribed types (-1: every type).
  public var eventMask: Int64
  public var clientView: Bool
  public var description: String
  public var createdAt: Date
  public var createdBy: String
  public var secret: String
  /// The secret before the last rotation and until when it still signs deliveries.
  public var previousSecret: String?
  public var previousExpiresAt: Date?

  /// The secrets that sign a delivery made at `now`: the current one, and the previous one until it expires.
  public func signingSecrets(at now: Date) -> [String] {
    guard let previousSecret, let previousExpiresAt, now < previousExpiresAt else { return [self.secret] }
    return [self.secret, previousSecret]
  }

  /// What the API shows of it (never a secret).
  public func subscription(at now: Date) -> Redress_V1_WebhookSubscription {
    .with {
      $0.id = self.id
      $0.url = self.url
      $0.eventTypes = Redress_V1_WebhookEventType.types(inMask: self.eventMask)
      $0.clientView = self.clientView
      $0.description_p = self.description
      $0.createdAt = .init(date: self.createdAt)
      $0.createdBy = self.createdBy
      if let expires = self.previousExpiresAt, self.previousSecret != nil, now < expires {
        $0.previousSecretExpiresAt = .init(date: expires)
      }
    }
  }
}

/// A delivery the dispatcher claimed: the subscription, the event and the change it comes from.
public struct DueWebhookDelivery: Sendable {
  /// The delivery's sequence number (its public id is ``WebhookDeliveryID``).
  public var seq: Int64
  public var webhook: StoredWebhook
  public var eventID: String
  public var type: Redress_V1_WebhookEventType
  /// Attempts made before this one.
  public var attempts: Int
  public var remedy: Redress_V1_Remedy
  public var entry: Redress_V1_TimelineEntry
  public var incident: Redress_V1_Incident?
  /// The trace context of the request whose change raised the event (``StoredTraceContext``), if traced.
  public var traceContext: String? = nil

  /// The event as this delivery's subscription receives it.
  public var event: Redress_V1_WebhookEvent {
    WebhookEvents.event(
      id: self.eventID, type: self.type, remedy: self.remedy, entry: self.entry, incident: self.incident,
      clientView: self.webhook.clientView)
  }
}

/// How one attempt ended.
public enum WebhookAttemptOutcome: Sendable, Hashable {
  /// The receiver answered 2xx.
  case delivered(status: Int, at: Date)
  /// It failed; the next attempt is due at `next`.
  case retry(status: Int, error: String, next: Date)
  /// It failed and was the last attempt: dead-lettered until replayed.
  case dead(status: Int, error: String)
}

/// The public id of a delivery: `dlv_` and its sequence number.
public enum WebhookDeliveryID {
  public static func make(_ seq: Int64) -> String { "dlv_\(seq)" }
  public static func parse(_ id: String) -> Int64? {
    guard id.hasPrefix("dlv_"), let seq = Int64(id.dropFirst(4)), seq > 0 else { return nil }
    return seq
  }
}

/// What the webhook subscriptions and the delivery outbox need from the database. The outbox rows are written
/// by the remediation stores in each change's own transaction (``RemediationStore`` and
/// ``PostgresRemediationStore``), so a delivery exists exactly for the changes that committed.
public protocol WebhookStorage: Sendable {
  /// Stores `webhook` unless its tenant already has `limit` subscriptions; `false` then.
  func createWebhook(_ webhook: StoredWebhook, limit: Int) async throws -> Bool
  func webhooks(tenant: String) async throws -> [StoredWebhook]
  func webhook(id: String, tenant: String) async throws -> StoredWebhook?
  /// Removes the subscription and its deliveries; how many were still pending, or `nil` when unknown.
  func deleteWebhook(id: String, tenant: String) async throws -> Int64?
  /// Replaces the secret, keeping the current one as the previous until `previousExpiresAt`.
  func rotateWebhookSecret(id: String, tenant: String, secret: String, previousExpiresAt: Date) async throws -> StoredWebhook?

  /// Claims up to `limit` deliveries due at `now` until `leaseUntil`: pending, not leased, and the oldest
  /// pending one of their subscription and remedy (so one remedy's events go out in order).
  func claimDueWebhookDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [DueWebhookDelivery]
  func recordWebhookAttempt(seq: Int64, _ outcome: WebhookAttemptOutcome) async throws
  /// When the next delivery that may be sent becomes due (or its lease ends): the first pending one of each
  /// (subscription, remedy), as the later ones wait for it; `nil` when none is pending.
  func nextWebhookDeliveryTime() async throws -> Date?
  /// Clears every lease (a single process starting: nothing else can hold one).
  func releaseWebhookLeases() async throws
  /// Deletes delivered deliveries created before `delivered` and dead ones created before `dead`.
  func pruneWebhookDeliveries(deliveredBefore delivered: Date, deadBefore dead: Date) async throws -> Int

  /// A subscription's deliveries, newest first, with sequence below `beforeSeq`; `nil` when unknown.
  func webhookDeliveries(
    webhookID: String,
    tenant: String,
    states: [Redress_V1_WebhookDeliveryState],
    beforeSeq: Int64?,
    limit: Int
  ) async throws -> [Redress_V1_WebhookDelivery]?
  /// Makes the given deliveries (delivered or dead; every dead one when `seqs` is empty) pending again with no
  /// attempts; how many, or `nil` when the subscription is unknown.
  func replayWebhookDeliveries(webhookID: String, tenant: String, seqs: [Int64]) async throws -> Int64?
  /// Pending and dead deliveries of every tenant, and when the oldest pending one was created (metrics).
  func webhookBacklog() async throws -> (pending: Int, dead: Int, oldestPending: Date?)
}

/// Delivery states as stored (the `WebhookDeliveryState` numbers).
enum StoredDeliveryState {
  static let pending = Redress_V1_WebhookDeliveryState.pending.rawValue
  static let delivered = Redress_V1_WebhookDeliveryState.delivered.rawValue
  static let dead = Redress_V1_WebhookDeliveryState.dead.rawValue
}
