import Foundation
import GRPCCore
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

/// OpenRemedy, GetRemedy and ListRemedies: idempotency, tenants, filters, paging, redaction, recurrence, restarts.
@Suite("Opening and querying remedies")
struct QueryTests {
  @Test("OpenRemedy is idempotent on the incident id and takes the tenant from the incident", arguments: Backend.allCases)
  func openIsIdempotent(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let intake = harness.intake
      let incident = Incidents.make(id: "inc_same")
      let first = try await intake.open(incident)
      let second = try await intake.open(incident)
      #expect(!first.alreadyOpen)
      #expect(second.alreadyOpen)
      #expect(second.remedy == first.remedy)
      #expect(first.remedy.tenant == "acme")
      #expect(first.remedy.id.hasPrefix("rem_"))
      #expect(first.remedy.incidentID == "inc_same")
      // The same incident id in another tenant is another remedy.
      let globex = try await intake.open(Incidents.make(id: "inc_same", tenant: "globex"))
      #expect(!globex.alreadyOpen)
      #expect(globex.remedy.id != first.remedy.id)
      let byIncident = try await harness.desk(People.rita).get(incidentID: "inc_same")
      #expect(byIncident.id == first.remedy.id)
      await expectError(.invalidArgument, containing: "incident.id") {
        try await intake.open(Incidents.make(id: ""))
      }
    }
  }

  @Test("intake opens remedies with its client certificate (mutual TLS), and unauthenticated callers are refused", arguments: Backend.allCases)
  func intakeOverMutualTLS(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let opened = try await harness.withClient(presenting: RemediationTestPKI.shared.intakeService) { client in
        try await client.openRemedy(.with { $0.incident = Incidents.make(id: "inc_mtls") })
      }
      #expect(opened.remedy.incidentID == "inc_mtls")
      #expect(opened.remedy.timeline.first?.actor == "intake-mtls")
      await expectError(.unauthenticated) {
        try await harness.client.openRemedy(.with { $0.incident = Incidents.make() })
      }
      await expectError(.unauthenticated) {
        try await harness.client.getRemedy(.with { $0.remedyID = opened.remedy.id }, metadata: ["authorization": "Bearer wrong"])
      }
    }
  }

  @Test("another tenant's remedies are NOT_FOUND for every call", arguments: Backend.allCases)
  func tenantIsolation(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      let acme = try await harness.open()
      let greta = harness.desk(People.greta)
      await expectError(.notFound) { try await greta.get(acme.id) }
      await expectError(.notFound) { try await greta.get(incidentID: acme.incidentID) }
      await expectError(.notFound) { try await greta.act(acme, Do.investigate()) }
      #expect(try await greta.list().remedies.isEmpty)
      let globex = try await harness.open(Incidents.make(tenant: "globex"))
      #expect(try await greta.list().remedies.map(\.id) == [globex.id])
      await expectError(.notFound) { try await harness.desk(People.olivia).get(globex.id) }
      #expect(try await harness.desk(People.olivia).act(acme, Do.investigate()).version == 2)
    }
  }

  @Test("ListRemedies filters by stage, status, owner and pages with an opaque token bound to the filters", arguments: Backend.allCases)
  func listFiltersAndPages(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var opened: [Redress_V1_Remedy] = []
      for _ in 0..<5 {
        opened.append(try await harness.open())
        harness.clock.advance(by: 1)
      }
      var walk = Walk(harness: harness, remedy: opened[1])
      try await walk.toPropose()
      var other = Walk(harness: harness, remedy: opened[3])
      try await other.act(Do.investigate(), as: People.omar)
      try await other.act(Do.apologize(), as: People.omar)
      let rita = harness.desk(People.rita)
      let proposing = try await rita.list(.with { $0.stages = [.propose] })
      #expect(Set(proposing.remedies.map(\.id)) == [opened[1].id, opened[3].id])
      let investigating = try await rita.list(.with { $0.stages = [.investigate] })
      #expect(investigating.remedies.count == 3)
      let omars = try await rita.list(.with { $0.owner = "omar" })
      #expect(omars.remedies.map(\.id) == [opened[3].id])
      #expect(try await rita.list(.with { $0.statuses = [.resolved] }).remedies.isEmpty)

      var seen: [String] = []
      var token = ""
      repeat {
        let page = try await rita.list(.with {
          $0.pageSize = 2
          $0.pageToken = token
        })
        #expect(page.remedies.count <= 2)
        seen += page.remedies.map(\.id)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(seen == opened.reversed().map(\.id))

      let firstPage = try await rita.list(.with { $0.pageSize = 2 })
      await expectError(.invalidArgument, containing: "different filters") {
        try await rita.list(.with {
          $0.pageSize = 2
          $0.pageToken = firstPage.nextPageToken
          $0.stages = [.propose]
        })
      }
      await expectError(.invalidArgument, containing: "page_token") {
        try await rita.list(.with { $0.pageToken = "not-a-token" })
      }
      await expectError(.invalidArgument, containing: "page_size") {
        try await rita.list(.with { $0.pageSize = 501 })
      }
    }
  }

  @Test("a client tool's view hides internal notes, escalations and the investigation", arguments: Backend.allCases)
  func clientToolRedaction(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate())
      try await walk.act(Do.note("internal: this client threatens reviews", internal: true))
      try await walk.act(Do.escalate("VIP"))
      try await walk.act(Do.apologize())
      let full = try await harness.desk(People.rita).get(walk.remedy.id)
      #expect(full.investigation.rootCause == "The label printer swapped two SKUs.")
      #expect(full.timeline.count == 5)
      let view = try await harness.desk(People.portal).get(walk.remedy.id)
      #expect(!view.hasInvestigation)
      #expect(view.escalations.isEmpty)
      #expect(view.timeline.map(\.action) == ["open", "apologize"])
      #expect(!view.timeline.contains { $0.summary.contains("threatens") })
      #expect(view.version == full.version)
      #expect(view.acknowledgement.message == full.acknowledgement.message)
      #expect(view.acknowledgement.by.isEmpty, "who apologized is staff")
      let listed = try await harness.desk(People.portal).list()
      #expect(listed.remedies.first.map { !$0.hasInvestigation } == true)
    }
  }

  @Test("a remedy whose root-cause fingerprint matches an earlier lesson is flagged as a recurrence and linked", arguments: Backend.allCases)
  func recurrence(backend: Backend) async throws {
    try await RemediationHarness.run(backend) { harness in
      var first = try await Walk.open(harness)
      try await first.toLearn()
      try await first.act(Do.learn(fingerprint: "warehouse:label-printer:sku-swap"))

      var second = try await Walk.open(harness)
      try await second.act(Do.investigate(fingerprint: "warehouse:label-printer:sku-swap"))
      #expect(second.remedy.recurrenceOf == first.remedy.id)
      #expect(second.remedy.timeline.last?.summary.contains("Recurrence of \(first.remedy.id)") == true)

      var third = try await Walk.open(harness)
      try await third.toLearn()
      #expect(third.remedy.recurrenceOf.isEmpty)
      try await third.act(Do.learn(fingerprint: "warehouse:label-printer:sku-swap"))
      #expect(third.remedy.recurrenceOf == first.remedy.id)

      var unrelated = try await Walk.open(harness)
      try await unrelated.act(Do.investigate(fingerprint: "billing:tax-rounding"))
      #expect(unrelated.remedy.recurrenceOf.isEmpty)

      let recurrences = try await harness.desk(People.rita).list(.with { $0.recurrencesOnly = true })
      #expect(Set(recurrences.remedies.map(\.id)) == [second.remedy.id, third.remedy.id])
      // Another tenant's lessons are not this tenant's recurrences.
      let greta = harness.desk(People.greta)
      let globex = try await harness.open(Incidents.make(tenant: "globex"))
      let investigated = try await greta.act(globex, Do.investigate(fingerprint: "warehouse:label-printer:sku-swap"))
      #expect(investigated.recurrenceOf.isEmpty)
    }
  }

  @Test("a restart loses nothing: remedies, ledgers awaiting approval and the change log survive", arguments: Backend.allCases)
  func restartLosesNothing(backend: Backend) async throws {
    try await backend.withDatabase { database in try await self.restartLosesNothing(database) }
  }

  func restartLosesNothing(_ database: TestDatabase) async throws {
    let clock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000))
    let before = try await RemediationHarness.run(database: database, clock: clock) { harness in
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      try await walk.act(Do.offer(compensation: [20_000]), as: People.alice)
      try await walk.act(Do.respond(1, .accepted))
      try await walk.act(Do.compensate(20_000, key: "big"))
      return walk.remedy
    }
    try await RemediationHarness.run(database: database, clock: clock) { harness in
      let after = try await harness.desk(People.rita).get(before.id)
      #expect(after == before)
      #expect(after.compensation.items.first?.state == .awaitingApproval)
      let approved = try await harness.desk(People.aaron).act(after, Do.approve("cmp-1"))
      #expect(approved.currentStage == .fix)
      let watcher = Watcher()
      let replayed = try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watcher.run(harness.desk(People.rita), remedyID: before.id, afterVersion: 1) }
        defer { group.cancelAll() }
        return try await watcher.next(Int(approved.version) - 1)
      }
      #expect(replayed.map(\.change.entry.version) == Array(2...approved.version))
      #expect(replayed.last?.change.remedy == approved)
    }
  }
}
