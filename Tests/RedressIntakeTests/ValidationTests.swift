import Foundation
import GRPCCore
import GRPCProtobuf
import RedressIntake
import RedressSchemas
import RedressService
import SwiftProtobuf
import Testing

@Suite("Validation")
struct ValidationTests {
  let now = Date(timeIntervalSince1970: 1_800_000_000)
  let validator = IncidentValidator()

  func fields(_ request: Redress_V1_SubmitIncidentRequest) -> [String] {
    self.validator.violations(of: request, now: self.now).all.map(\.field)
  }

  func fields(key: String = "key-1", _ configure: (inout Redress_V1_IncidentReport) -> Void) -> [String] {
    self.fields(submitRequest(key, validReport(now: self.now, configure: configure)))
  }

  @Test("a valid report has no violations")
  func valid() {
    #expect(self.fields { _ in }.isEmpty)
  }

  @Test(
    "each broken rule is reported at its field path",
    arguments: [
      ("report.customer", { @Sendable (r: inout Redress_V1_IncidentReport) in r.clearCustomer() }),
      ("report.customer.id", { r in r.customer.id = "" }),
      ("report.customer.id", { r in r.customer.id = String(repeating: "x", count: 129) }),
      ("report.customer.name", { r in r.customer.name = "   " }),
      ("report.customer.name", { r in r.customer.name = String(repeating: "n", count: 201) }),
      ("report.customer", { r in r.customer.tier = .unspecified }),
      ("report.customer.tier", { r in r.customer.tier = .UNRECOGNIZED(9) }),
      ("report.customer.yearly_value.currency", { r in r.customer.yearlyValue = .with { $0.currency = "usd" } }),
      ("report.customer.yearly_value.amount_minor", {
        r in r.customer.yearlyValue = .with { $0.currency = "USD"; $0.amountMinor = -1 }
      }),
      ("report.title", { r in r.title = "" }),
      ("report.title", { r in r.title = String(repeating: "t", count: 201) }),
      ("report.title", { r in r.title = "two\nlines" }),
      ("report.description", { r in r.description_p = String(repeating: "d", count: 16 * 1024 + 1) }),
      ("report.category", { r in r.category = .unspecified }),
      ("report.category", { r in r.category = .UNRECOGNIZED(42) }),
      ("report.channel", { r in r.channel = .unspecified }),
      ("report.channel", { r in r.channel = .UNRECOGNIZED(42) }),
      ("report.demand.text", { r in r.demand.text = String(repeating: "x", count: 4 * 1024 + 1) }),
      ("report.demand.amount.currency", { r in r.demand.amount.currency = "DOLLARS" }),
      ("report.demand.amount.amount_minor", { r in r.demand.amount.amountMinor = 0 }),
      // Issue 11, finding 1: only real ISO 4217 currencies, and amounts bounded at 10^13 minor units.
      ("report.demand.amount.currency", { r in r.demand.amount.currency = "XXX" }),
      ("report.demand.amount.currency", { r in r.demand.amount.currency = "ABC" }),
      ("report.demand.amount.amount_minor", { r in r.demand.amount.amountMinor = 92_000_000_000_000_000 }),
      ("report.demand.amount.amount_minor", { r in r.demand.amount.amountMinor = 10_000_000_000_001 }),
      ("report.customer.yearly_value.amount_minor", { r in r.customer.yearlyValue = .with { $0.currency = "EUR"; $0.amountMinor = .max } }),
      // Issue 11, finding 7: no control or bidi-override characters in any stored text.
      ("report.description", { r in r.description_p = "see \u{1B}]52;c;cm0gLXJm\u{07} here" }),
      ("report.customer.name", { r in r.customer.name = "Ada \u{202E}remotsuC" }),
      ("report.demand.text", { r in r.demand.text = "refund\u{1B}[2J" }),
      ("report.title", { r in r.title = "two\nlines" }),
      ("report.grouping_key", { r in r.groupingKey = "key\u{2066}" }),
      ("report.occurred_at", { r in r.occurredAt = Google_Protobuf_Timestamp(seconds: 1_800_000_000 + 301) }),
      ("report.occurred_at", { r in r.occurredAt = Google_Protobuf_Timestamp(seconds: 0) }),
      ("report.links", { r in r.links = (0..<21).map { "https://example.com/\($0)" } }),
      ("report.links[0]", { r in r.links = ["ftp://example.com/file"] }),
      ("report.links[0]", { r in r.links = ["https://" + String(repeating: "a", count: 2048)] }),
      ("report.labels", { r in r.labels = (0..<21).map { "l\($0)" } }),
      ("report.labels[1]", { r in r.labels = ["ok", "Not-Lower"] }),
      ("report.labels[0]", { r in r.labels = [""] }),
      ("report.labels[0]", { r in r.labels = [String(repeating: "a", count: 65)] }),
      ("report.labels[1]", { r in r.labels = ["same", "same"] }),
      ("report.grouping_key", { r in r.groupingKey = String(repeating: "g", count: 129) }),
    ] as [(String, @Sendable (inout Redress_V1_IncidentReport) -> Void)]
  )
  func rule(field: String, breakRule: @Sendable (inout Redress_V1_IncidentReport) -> Void) {
    #expect(self.fields(breakRule) == [field])
  }

  @Test("the largest amount, 10^13 minor units, and any currency in use are accepted")
  func amountBound() {
    #expect(self.fields { $0.demand.amount.amountMinor = 10_000_000_000_000 }.isEmpty)
    #expect(self.fields { $0.demand.amount.currency = "JPY"; $0.customer.yearlyValue.currency = "KWD" }.isEmpty)
  }

  @Test("free text may break lines and use tabs")
  func multilineText() {
    #expect(self.fields { $0.description_p = "Line one\n\tindented"; $0.demand.text = "a\nb" }.isEmpty)
  }

  @Test("an occurred_at within five minutes ahead is accepted (clock skew)")
  func skew() {
    #expect(self.fields { $0.occurredAt = Google_Protobuf_Timestamp(seconds: 1_800_000_000 + 299) }.isEmpty)
  }

  @Test("the idempotency key is required and limited to 128 characters of A-Z a-z 0-9 . _ : -")
  func idempotencyKey() {
    #expect(self.fields(key: "") { _ in } == ["idempotency_key"])
    #expect(self.fields(key: "has space") { _ in } == ["idempotency_key"])
    #expect(self.fields(key: String(repeating: "k", count: 129)) { _ in } == ["idempotency_key"])
    #expect(self.fields(key: String(repeating: "k", count: 128)) { _ in }.isEmpty)
    #expect(self.fields(key: "Tool.A_1:retry-2") { _ in }.isEmpty)
  }

  @Test("a missing report is one violation")
  func missingReport() {
    #expect(self.fields(.with { $0.idempotencyKey = "k" }) == ["report"])
  }

  @Test("every violation is reported at once")
  func allAtOnce() {
    let fields = self.fields(key: "") {
      $0.title = ""
      $0.category = .unspecified
      $0.labels = ["BAD", "ok", "ok"]
      $0.links = ["not a url"]
    }
    #expect(
      fields == [
        "idempotency_key", "report.title", "report.category", "report.links[0]", "report.labels[0]",
        "report.labels[2]",
      ])
  }

  @Test("an invalid submission answers invalidArgument listing every violation with BadRequest details")
  func overTheWire() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        let request = submitRequest(
          "", validReport { $0.title = ""; $0.customer.id = "" })
        let error = try await #require(throws: RPCError.self) {
          _ = try await intake.submitIncident(request, metadata: bearer(TestIdentities.toolA.token))
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("3 problems"))
        #expect(error.message.contains("report.title: is required"))
        let status = try #require(try error.unpackGoogleRPCStatus())
        let badRequest = try #require(status.details.compactMap(\.badRequest).first)
        #expect(badRequest.violations.map(\.field) == ["idempotency_key", "report.customer.id", "report.title"])
        #expect(try await harness.app.store.incidentCount() == 0)
      }
    }
  }
}
