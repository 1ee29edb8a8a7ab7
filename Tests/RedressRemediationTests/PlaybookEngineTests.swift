import Foundation
import RedressRemediation
import RedressSchemas
import RedressService
import Testing

/// The playbook state machine on its own: no server, no store, no clock.
@Suite("Playbook engine")
struct PlaybookEngineTests {
  let playbook = Playbook(policy: .defaults)
  let olivia = Identity(name: "olivia", tenant: "acme", roles: [.operator])
  let start = Date(timeIntervalSince1970: 1_800_000_000)

  @Test("the same action on the same remedy at the same time gives the same result")
  func deterministic() throws {
    let remedy = self.playbook.open(incident: Incidents.make(id: "inc_1"), id: "rem_1", by: "intake", at: self.start)
    let apply = {
      try self.playbook.apply(Do.investigate(), expectedVersion: 1, to: remedy, by: self.olivia, at: self.start + 60)
    }
    guard case .changed(let first, let firstEntry) = try apply(), case .changed(let second, let secondEntry) = try apply() else {
      Issue.record("investigate did not change the remedy")
      return
    }
    #expect(first == second)
    #expect(firstEntry == secondEntry)
    #expect(first.version == 2)
    #expect(remedy.version == 1)  // the input is a value; nothing else changed it
  }

  @Test("the remedy's currency comes from the demand, else the customer's yearly value, else the default")
  func currency() {
    var incident = Incidents.make(currency: "EUR")
    #expect(self.playbook.open(incident: incident, id: "r", by: "i", at: self.start).compensation.budget.currency == "EUR")
    incident.report.clearDemand()
    incident.report.customer.yearlyValue = .with {
      $0.currency = "JPY"
      $0.amountMinor = 1_000_000
    }
    #expect(self.playbook.open(incident: incident, id: "r", by: "i", at: self.start).goodwill.budget.currency == "JPY")
    incident.report.customer.clearYearlyValue()
    #expect(self.playbook.open(incident: incident, id: "r", by: "i", at: self.start).compensation.budget.currency == "USD")
  }

  @Test("each deadline fires once, and the next deadline moves on to the one not yet fired")
  func deadlinesFireOnce() throws {
    let remedy = self.playbook.open(incident: Incidents.make(priority: .p1), id: "rem_1", by: "intake", at: self.start)
    #expect(Playbook.nextDeadline(of: remedy) == self.start + 3_600)
    #expect(self.playbook.checkDeadlines(of: remedy, at: self.start + 3_599) == nil)
    let (late, entry) = try #require(self.playbook.checkDeadlines(of: remedy, at: self.start + 3_600))
    #expect(entry.version == 2)
    #expect(late.escalations.map(\.kind) == ["overdue:acknowledge"])
    #expect(Playbook.nextDeadline(of: late) == self.start + 86_400)
    #expect(self.playbook.checkDeadlines(of: late, at: self.start + 7_200) == nil)
    let (later, _) = try #require(self.playbook.checkDeadlines(of: late, at: self.start + 86_400))
    #expect(later.escalations.map(\.kind) == ["overdue:acknowledge", "overdue:resolve"])
    #expect(Playbook.nextDeadline(of: later) == nil)
  }

  @Test("a refusal names what must happen first and leaves the remedy as it was")
  func refusalsExplain() {
    let remedy = self.playbook.open(incident: Incidents.make(), id: "rem_1", by: "intake", at: self.start)
    #expect(remedy.nextAction.hasPrefix("Acknowledge receipt now"))
    #expect(remedy.nextAction.contains("then investigate"))
    do {
      _ = try self.playbook.apply(Do.learn(), expectedVersion: 1, to: remedy, by: self.olivia, at: self.start)
      Issue.record("learn before investigating was accepted")
    } catch {
      #expect(error.code == .ruleViolation)
      #expect(error.message.contains("the investigate stage comes first"))
    }
  }
}
