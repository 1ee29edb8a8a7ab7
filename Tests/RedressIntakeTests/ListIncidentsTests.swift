import Foundation
import GRPCCore
import GRPCProtobuf
import RedressIntake
import RedressSchemas
import RedressService
import SwiftProtobuf
import RedressTestSupport
import Testing

@Suite("Listing incidents")
struct ListIncidentsTests {
  let token = bearer(TestIdentities.toolA.token)

  /// Submits five incidents a minute apart; returns them oldest first.
  func seed(_ intake: IntakeHarness.Client, clock: ManualWallClock) async throws -> [Redress_V1_Incident] {
    let reports: [Redress_V1_IncidentReport] = [
      validReport(customerID: "c1", now: clock.now()),
      validReport(customerID: "c2", now: clock.now()) { $0.category = .billingError },
      validReport(customerID: "c1", now: clock.now()) {
        $0.customer.tier = .enterprise
        $0.category = .defectiveProduct
      },
      validReport(customerID: "c3", now: clock.now()) { $0.category = .communication },
      validReport(customerID: "c1", now: clock.now()) { $0.channel = .legalNotice },
    ]
    var incidents: [Redress_V1_Incident] = []
    for (index, report) in reports.enumerated() {
      clock.advance(by: 60)
      incidents.append(try await intake.submitIncident(submitRequest("seed-\(index)", report), metadata: self.token).incident)
    }
    return incidents
  }

  func ids(_ response: Redress_V1_ListIncidentsResponse) -> [String] { response.incidents.map(\.id) }

  @Test("incidents are listed newest first and filters combine", arguments: Backend.allCases)
  func filters(backend: Backend) async throws {
    let clock = ManualWallClock(start: Date())
    try await IntakeHarness.run(backend, clock: clock) { harness in
      try await harness.withClient { intake in
        let seeded = try await self.seed(intake, clock: clock)
        try await harness.app.store.recordDelivery(incidentID: seeded[1].id, remedyID: "rem_1")

        let all = try await intake.listIncidents(.init(), metadata: self.token)
        #expect(self.ids(all) == seeded.reversed().map(\.id))
        #expect(all.nextPageToken.isEmpty)

        let inRemediation = try await intake.listIncidents(.with { $0.statuses = [.inRemediation] }, metadata: self.token)
        #expect(self.ids(inRemediation) == [seeded[1].id])
        #expect(inRemediation.incidents.first?.remedyID == "rem_1")

        let p1 = try await intake.listIncidents(.with { $0.priorities = [.p1] }, metadata: self.token)
        #expect(self.ids(p1) == [seeded[2].id])

        let categories = try await intake.listIncidents(
          .with { $0.categories = [.billingError, .communication] }, metadata: self.token)
        #expect(self.ids(categories) == [seeded[3].id, seeded[1].id])

        let customer = try await intake.listIncidents(.with { $0.customerID = "c1" }, metadata: self.token)
        #expect(self.ids(customer) == [seeded[4].id, seeded[2].id, seeded[0].id])

        let window = try await intake.listIncidents(
          .with {
            $0.receivedAfter = seeded[1].receivedAt
            $0.receivedBefore = seeded[3].receivedAt
          }, metadata: self.token)
        #expect(self.ids(window) == [seeded[2].id, seeded[1].id])

        let combined = try await intake.listIncidents(
          .with {
            $0.customerID = "c1"
            $0.categories = [.wrongItem]
          }, metadata: self.token)
        #expect(self.ids(combined) == [seeded[4].id, seeded[0].id])
      }
    }
  }

  @Test("pages carry an opaque token and together list every incident once", arguments: Backend.allCases)
  func paging(backend: Backend) async throws {
    let clock = ManualWallClock(start: Date())
    try await IntakeHarness.run(backend, clock: clock) { harness in
      try await harness.withClient { intake in
        let seeded = try await self.seed(intake, clock: clock)
        var seen: [String] = []
        var request = Redress_V1_ListIncidentsRequest.with { $0.pageSize = 2 }
        var pages = 0
        repeat {
          let page = try await intake.listIncidents(request, metadata: self.token)
          #expect(page.incidents.count <= 2)
          seen += self.ids(page)
          request.pageToken = page.nextPageToken
          pages += 1
        } while !request.pageToken.isEmpty && pages < 10
        #expect(pages == 3)
        #expect(seen == seeded.reversed().map(\.id))
      }
    }
  }

  @Test("incidents with the same receipt time page without loss or repeats", arguments: Backend.allCases)
  func pagingTies(backend: Backend) async throws {
    try await IntakeHarness.run(backend, clock: ManualWallClock(start: Date())) { harness in
      try await harness.withClient { intake in
        let response = try await intake.submitIncidents(metadata: self.token) { writer in
          try await writer.write(contentsOf: (0..<7).map { submitRequest("tie-\($0)", validReport()) })
        }
        #expect(response.accepted == 7)
        var seen: [String] = []
        var request = Redress_V1_ListIncidentsRequest.with { $0.pageSize = 3 }
        for _ in 0..<5 {
          let page = try await intake.listIncidents(request, metadata: self.token)
          seen += self.ids(page)
          request.pageToken = page.nextPageToken
          if request.pageToken.isEmpty { break }
        }
        #expect(seen.count == 7)
        #expect(Set(seen).count == 7)
      }
    }
  }

  @Test("page size above 500, a foreign page token, or a token reused with other filters is invalidArgument", arguments: Backend.allCases)
  func invalidRequests(backend: Backend) async throws {
    let clock = ManualWallClock(start: Date())
    try await IntakeHarness.run(backend, clock: clock) { harness in
      try await harness.withClient { intake in
        _ = try await self.seed(intake, clock: clock)
        let tooBig = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(.with { $0.pageSize = 501 }, metadata: self.token)
        }
        #expect(tooBig.code == .invalidArgument)
        #expect(tooBig.message.contains("page_size"))
        let maximum = try await intake.listIncidents(.with { $0.pageSize = 500 }, metadata: self.token)
        #expect(maximum.incidents.count == 5)

        let garbage = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(.with { $0.pageToken = "bm90IGEgdG9rZW4" }, metadata: self.token)
        }
        #expect(garbage.code == .invalidArgument)
        #expect(garbage.message.contains("page_token"))

        let first = try await intake.listIncidents(.with { $0.pageSize = 2 }, metadata: self.token)
        let otherFilters = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(
            .with {
              $0.pageSize = 2
              $0.customerID = "c1"
              $0.pageToken = first.nextPageToken
            }, metadata: self.token)
        }
        #expect(otherFilters.code == .invalidArgument)
        #expect(otherFilters.message.contains("different filters"))

        let backwards = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(
            .with {
              $0.receivedAfter = Google_Protobuf_Timestamp(seconds: 2_000)
              $0.receivedBefore = Google_Protobuf_Timestamp(seconds: 1_000)
            }, metadata: self.token)
        }
        #expect(backwards.code == .invalidArgument)
        #expect(backwards.message.contains("received_before"))
      }
    }
  }
}
