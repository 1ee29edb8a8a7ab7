import Foundation
import RedressSchemas

/// Drives a legitimate remedy along the playbook to a point, over the wire, checking nothing; tests assert.
struct Walk {
  let harness: RemediationHarness
  var remedy: Redress_V1_Remedy

  var olivia: Desk { self.harness.desk(People.olivia) }

  static func open(_ harness: RemediationHarness, _ incident: Redress_V1_Incident = Incidents.make()) async throws -> Walk {
    Walk(harness: harness, remedy: try await harness.open(incident))
  }

  mutating func act(_ action: Action, as person: (name: String, token: String) = People.olivia) async throws {
    self.remedy = try await self.harness.desk(person).act(self.remedy, action)
    if person == People.portal {
      // A client tool is answered with the client view; the walk keeps the whole remedy.
      self.remedy = try await self.olivia.get(self.remedy.id)
    }
  }

  /// Investigated (legitimate) and apologized: propose is active.
  mutating func toPropose(fingerprint: String = "") async throws {
    try await self.act(Do.investigate(.legitimate, fingerprint: fingerprint))
    try await self.act(Do.apologize())
  }

  /// Offer (30.00 credit) accepted in round one: compensate is active.
  mutating func toCompensate(compensation: [Int64] = [3_000]) async throws {
    try await self.toPropose()
    try await self.act(Do.offer(compensation: compensation))
    try await self.act(Do.respond(self.remedy.offers.last!.round, .accepted))
  }

  /// Compensation issued: fix is active.
  mutating func toFix() async throws {
    try await self.toCompensate()
    try await self.act(Do.compensate(3_000, key: "credit-1"))
  }

  /// Fix assigned, done, verified and confirmed by the client: goodwill is active.
  mutating func fixEverything() async throws {
    try await self.act(Do.assignFix(due: self.harness.clock.now() + 86_400))
    try await self.act(Do.fixDone)
    try await self.act(Do.fixVerified)
    try await self.act(Do.fixConfirmed, as: People.portal)
  }

  /// Goodwill given and the clock moved past the follow-up date: follow-up is active and due.
  mutating func toFollowUp() async throws {
    try await self.toFix()
    try await self.fixEverything()
    try await self.act(Do.goodwill())
    self.harness.clock.advance(by: 3 * 86_400)
  }

  /// Followed up (satisfied): learn is active.
  mutating func toLearn() async throws {
    try await self.toFollowUp()
    try await self.act(Do.followUp(.satisfied))
  }
}
