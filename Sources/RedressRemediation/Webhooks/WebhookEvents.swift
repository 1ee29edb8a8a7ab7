public import Foundation
public import RedressSchemas

/// Which outbound events one committed change raises, and the payload a subscription receives for each.
///
/// Events are derived from the remedy before and after the change (not from the action's name), so a change
/// made by any path — an RPC, a shared investigation, the timer — raises the same events, and the stores can
/// write them in the change's own transaction.
public enum WebhookEvents {
  /// The event types raised by a change from `before` (`nil` when the remedy was just opened) to `after`.
  public static func types(before: Redress_V1_Remedy?, after: Redress_V1_Remedy) -> [Redress_V1_WebhookEventType] {
    guard let before else { return [.incidentAccepted, .remedyOpened] }
    var types: [Redress_V1_WebhookEventType] = []
    if before.currentStage != after.currentStage, after.status == .open { types.append(.stageChanged) }
    if after.escalations.count > before.escalations.count { types.append(.escalated) }
    let awaitingBefore = Self.awaitingApproval(before)
    if !Self.awaitingApproval(after).subtracting(awaitingBefore).isEmpty { types.append(.compensationAwaitingApproval) }
    if !after.fix.owner.isEmpty, after.fix.owner != before.fix.owner || (before.fix.hasDoneAt && !after.fix.hasDoneAt) {
      types.append(.fixAssigned)
    }
    if after.fix.hasDoneAt, !before.fix.hasDoneAt { types.append(.fixDone) }
    if after.followUp.hasDueAnnouncedFor, after.followUp.dueAnnouncedFor != before.followUp.dueAnnouncedFor {
      types.append(.followUpDue)
    }
    if after.reopenCount > before.reopenCount { types.append(.remedyReopened) }
    if !after.recurrenceOf.isEmpty, before.recurrenceOf.isEmpty { types.append(.recurrenceDetected) }
    if after.status != before.status {
      switch after.status {
      case .resolved: types.append(.remedyResolved)
      case .withLegal: types.append(.sentToLegal)
      case .referred: types.append(.referred)
      case .declined: types.append(.declined)
      default: break
      }
    }
    return types
  }

  /// The ids of the compensation and goodwill items waiting for an approver.
  private static func awaitingApproval(_ remedy: Redress_V1_Remedy) -> Set<String> {
    Set((remedy.compensation.items + remedy.goodwill.items).filter { $0.state == .awaitingApproval }.map(\.id))
  }

  /// The stable id of the event of `type` raised by version `version` of remedy `remedyID`: the same on every
  /// retry and replay, and for every subscription.
  public static func eventID(remedyID: String, version: Int64, type: Redress_V1_WebhookEventType) -> String {
    "evt_\(remedyID)_v\(version)_\(type.rawValue)"
  }

  /// The event a subscription receives: the client's view of the remedy (and the entry only when it is not
  /// internal) for a client-view subscription.
  public static func event(
    id: String,
    type: Redress_V1_WebhookEventType,
    remedy: Redress_V1_Remedy,
    entry: Redress_V1_TimelineEntry,
    incident: Redress_V1_Incident?,
    clientView: Bool
  ) -> Redress_V1_WebhookEvent {
    var event = Redress_V1_WebhookEvent()
    event.id = id
    event.type = type.dottedName
    event.tenant = remedy.tenant
    event.createdAt = entry.at
    if clientView {
      event.remedy = remedy.clientView
      if let visible = entry.clientView { event.entry = visible }
    } else {
      // The timeline is the whole history; the entry of this change is in `entry`. Sending the remedy without
      // it keeps a payload's size independent of the remedy's age.
      var remedy = remedy
      remedy.timeline = []
      event.remedy = remedy
      event.entry = entry
      if let incident { event.incident = incident }
    }
    return event
  }

  /// The JSON body of a delivery (protobuf JSON: lowerCamelCase names, enums by name).
  public static func body(of event: Redress_V1_WebhookEvent) throws -> Data {
    try event.jsonUTF8Data()
  }
}
