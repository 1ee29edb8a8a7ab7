import Foundation
import GRPCCore
import RedressRemediation
import RedressSchemas
import RedressTestSupport
import Testing

/// Many clients, one mistake (issue 13, point 10): intake's group becomes real in remediation.
@Suite("Groups")
struct GroupTests {
  @Test("one investigation shared with the group reaches every member, including those opened later", arguments: Backend.allCases)
  func sharedInvestigation(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let root = try await harness.open(Incidents.make(id: "inc_root", customer: "cust-1"))
      let first = try await harness.open(Incidents.make(id: "inc_a", customer: "cust-2", groupRoot: "inc_root"))
      let elsewhere = try await harness.open(Incidents.make(id: "inc_other", customer: "cust-9"))
      #expect(root.groupID == "inc_root" && first.groupID == "inc_root" && elsewhere.groupID == "inc_other")

      let investigated = try await harness.desk(People.olivia).act(root, Do.investigate(forGroup: true))
      #expect(investigated.timeline.last?.summary.contains("Shared with the group.") == true)
      let member = try await harness.desk(People.olivia).get(first.id)
      #expect(member.version == 2)
      #expect(member.investigation.verdict == .legitimate)
      #expect(member.investigation.sharedFromRemedyID == root.id)
      #expect(member.investigation.investigatedBy == "olivia")
      #expect(member.currentStage == .acknowledge)
      #expect(member.timeline.last?.summary.hasPrefix("Investigated with the group (shared from remedy \(root.id))") == true)
      #expect(try await harness.desk(People.olivia).get(elsewhere.id).version == 1)

      // A report of the same mistake that arrives afterwards starts with the group's findings.
      let late = try await harness.open(Incidents.make(id: "inc_b", customer: "cust-3", groupRoot: "inc_root"))
      #expect(late.version == 2)
      #expect(late.stage(.investigate).state == .done)
      #expect(late.investigation.sharedFromRemedyID == root.id)

      // Each client is still acknowledged and apologized to on its own.
      #expect(late.stage(.acknowledge).state == .active)
      #expect(!late.hasAcknowledgement)
    }
  }

  @Test("the group budget caps compensation across the group, beside each remedy's own budget", arguments: Backend.allCases)
  func groupBudget(backend: Backend) async throws {
    try await RemediationHarness.run(backend, configure: { config in
      var usd = config.policy.limits(for: "USD")
      usd.groupCompensationBudgetMinor = 5_000
      config.policy.currencies["USD"] = usd
    }) { harness in
      var root = try await Walk.open(harness, Incidents.make(id: "inc_root", customer: "cust-1"))
      var member = try await Walk.open(harness, Incidents.make(id: "inc_a", customer: "cust-2", groupRoot: "inc_root"))
      try await root.toCompensate(compensation: [3_000])
      try await root.act(Do.compensate(3_000, key: "root"))
      try await member.toCompensate(compensation: [3_000])
      await expectError(.failedPrecondition, containing: "group's compensation budget of 50.00 USD") {
        try await member.olivia.act(member.remedy, Do.compensate(3_000, key: "member"))
      }
      try await member.act(Do.compensate(2_000, key: "member"))
      #expect(member.remedy.compensation.issued.amountMinor == 2_000)
    }
  }

  @Test("remedies list --group gives the members and the group's summary; client tools get no summary", arguments: Backend.allCases)
  func listAndSummary(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var root = try await Walk.open(harness, Incidents.make(id: "inc_root", customer: "cust-1"))
      var a = try await Walk.open(harness, Incidents.make(id: "inc_a", customer: "cust-2", groupRoot: "inc_root"))
      var b = try await Walk.open(harness, Incidents.make(id: "inc_b", customer: "cust-3", groupRoot: "inc_root"))
      _ = try await harness.open(Incidents.make(id: "inc_other", customer: "cust-2"))
      try await root.act(Do.investigate(forGroup: true))
      a.remedy = try await a.olivia.get(a.remedy.id)
      b.remedy = try await b.olivia.get(b.remedy.id)
      try await root.act(Do.receipt())
      try await root.act(Do.apologize())
      try await root.act(Do.offer(compensation: [3_000]))
      try await root.act(Do.respond(0, .accepted))
      try await root.act(Do.compensate(3_000, key: "root"))
      try await a.act(Do.receipt())
      try await b.act(Do.reinvestigate("This client's claim is outside the window.", as: Do.investigate(.outsidePolicy)))
      try await b.act(Do.receipt())
      try await b.act(Do.decline("Outside the 30-day window."))

      let listed = try await root.olivia.list(.with { $0.groupID = "inc_root" })
      #expect(Set(listed.remedies.map(\.id)) == [root.remedy.id, a.remedy.id, b.remedy.id])
      let summary = listed.group
      #expect(summary.groupID == "inc_root")
      #expect(summary.remedies == 3 && summary.open == 2 && summary.declined == 1)
      #expect(summary.reached == 3)
      #expect(summary.apologized == 1)
      #expect(summary.compensated == 1)
      #expect(summary.followedUp == 0)
      // b's own re-investigation replaced the shared one.
      #expect(summary.sharedInvestigation == 1)
      #expect(summary.compensationIssued == [.with { $0.currency = "USD"; $0.amountMinor = 3_000 }])
      #expect(summary.budget == [.with { $0.currency = "USD"; $0.amountMinor = 500_000 }])
      #expect(!summary.complete)

      let byCustomer = try await root.olivia.list(.with { $0.customerID = "cust-2" })
      #expect(byCustomer.remedies.count == 2)
      #expect(!byCustomer.hasGroup)
      let portal = try await harness.desk(People.portal).list(.with { $0.groupID = "inc_root" })
      #expect(portal.remedies.count == 3)
      #expect(!portal.hasGroup)
      await expectError(.invalidArgument, containing: "group_id") {
        try await root.olivia.list(.with { $0.groupID = "bad id!" })
      }
    }
  }
}
