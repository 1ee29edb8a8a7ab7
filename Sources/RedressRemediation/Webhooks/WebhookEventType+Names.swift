public import RedressSchemas

extension Redress_V1_WebhookEventType {
  /// Every type a subscription may ask for (`webhook.test` is sent only by `TestWebhook`).
  public static let subscribable: [Self] = [
    .incidentAccepted, .remedyOpened, .stageChanged, .escalated, .compensationAwaitingApproval, .fixAssigned,
    .fixDone, .followUpDue, .remedyResolved, .remedyReopened, .recurrenceDetected, .sentToLegal, .referred, .declined,
  ]

  /// The types a client-view subscription may ask for: what the client itself would see happen. Escalations,
  /// approvals, fix owners, legal, referrals and recurrences are staff matters.
  public static let clientVisible: Set<Self> = [
    .incidentAccepted, .remedyOpened, .stageChanged, .fixDone, .remedyResolved, .remedyReopened, .declined,
  ]

  /// The dotted name in payloads, headers, docs and the CLI, e.g. `remedy.stage_changed`.
  public var dottedName: String {
    switch self {
    case .unspecified, .UNRECOGNIZED: "unspecified"
    case .incidentAccepted: "incident.accepted"
    case .remedyOpened: "remedy.opened"
    case .stageChanged: "remedy.stage_changed"
    case .escalated: "remedy.escalated"
    case .compensationAwaitingApproval: "compensation.awaiting_approval"
    case .fixAssigned: "fix.assigned"
    case .fixDone: "fix.done"
    case .followUpDue: "follow_up.due"
    case .remedyResolved: "remedy.resolved"
    case .remedyReopened: "remedy.reopened"
    case .recurrenceDetected: "recurrence.detected"
    case .sentToLegal: "remedy.sent_to_legal"
    case .referred: "remedy.referred"
    case .declined: "remedy.declined"
    case .test: "webhook.test"
    }
  }

  /// The type with `dottedName`, or `nil`.
  public init?(dottedName: String) {
    guard let type = (Self.subscribable + [.test]).first(where: { $0.dottedName == dottedName }) else { return nil }
    self = type
  }

  /// This type's bit in a subscription's stored event mask.
  var maskBit: Int64 { 1 << Int64(self.rawValue) }

  /// The stored mask of `types`; every bit (all types, also ones added later) when empty.
  static func mask(of types: [Self]) -> Int64 {
    types.isEmpty ? -1 : types.reduce(0) { $0 | $1.maskBit }
  }

  /// The types a stored mask stands for (empty for every type).
  static func types(inMask mask: Int64) -> [Self] {
    mask == -1 ? [] : Self.subscribable.filter { mask & $0.maskBit != 0 }
  }
}
