import Foundation
import RedressTestSupport
import Testing

/// Three clients hit by one mistake, walked through the real `redress` CLI against `redress dev` (issue 13): one
/// investigation shared by the group; one client declined as outside policy without an apology; one compensated
/// in JPY; one whose compensation approval is rejected and requested again; the group ends resolved.
@Suite("redress CLI: a group of clients", .serialized)
struct GroupEndToEndTests {
  typealias E2E = EndToEndTests

  static func submit(_ stack: DevStackProcess, customer: String, demand: String, key: String) async throws -> Executables.Result {
    try await stack.redress([
      "submit", "--customer-id", customer, "--customer-name", "Client \(customer)", "--tier", "standard",
      "--title", "Helmets from batch 42 arrived cracked", "--category", "defective-product", "--channel", "email",
      "--demand", "Replace it", "--demand-amount", demand, "--grouping-key", "batch-42", "--idempotency-key", key,
    ])
  }

  @Test("a group of three clients from one shared investigation to a resolved group")
  func groupToResolved() async throws {
    let stack = try await DevStackProcess()
    do {
      // Three reports of one mistake; a retried submit (same key, no --occurred-at) replays and says so.
      let first = try await Self.submit(stack, customer: "c-usd", demand: "250.00 USD", key: "batch42-usd")
      #expect(first.status == 0, "\(first.stderr)")
      let root = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      let retry = try await Self.submit(stack, customer: "c-usd", demand: "250.00 USD", key: "batch42-usd")
      #expect(retry.status == 0, "a retry of the same command replays: \(retry.stderr)")
      #expect(retry.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == root)
      #expect(retry.stderr.contains("replayed"))
      let yenIncident = try await Self.submit(stack, customer: "c-jpy", demand: "12000 JPY", key: "batch42-jpy")
      let lateIncident = try await Self.submit(stack, customer: "c-late", demand: "80.00 USD", key: "batch42-late")
      #expect(yenIncident.status == 0 && lateIncident.status == 0, "\(yenIncident.stderr) \(lateIncident.stderr)")

      let usd = try await E2E.remedyID(of: root, in: stack)
      let yen = try await E2E.remedyID(of: yenIncident.stdout.trimmingCharacters(in: .whitespacesAndNewlines), in: stack)
      let late = try await E2E.remedyID(of: lateIncident.stdout.trimmingCharacters(in: .whitespacesAndNewlines), in: stack)

      // One investigation for the whole group, recorded on the root's remedy.
      try await E2E.act(stack, [
        "investigate", usd, "--for-group", "--root-cause", "Batch 42 helmets were stored below freezing",
        "--verdict", "legitimate", "--policy-clause", "Warranty 3.1", "--clients-affected", "3", "--orders-affected", "3",
        "--cost-estimate", "450.00 USD",
      ], expectStage: "STAGE_ACKNOWLEDGE")
      for member in [yen, late] {
        let shared = try E2E.json(try await stack.redress(["remedies", "get", member, "--json"]).stdout)
        #expect(E2E.field(shared, "investigation.shared_from_remedy_id") as? String == usd)
        #expect(E2E.field(shared, "current_stage") as? String == "STAGE_ACKNOWLEDGE")
      }

      // Client 3 bought after the recall window: re-investigated as outside policy, answered, declined — no apology.
      try await E2E.act(stack, [
        "reinvestigate", late, "--reason", "Bought after the recall window closed", "--root-cause", "Batch 42 storage",
        "--verdict", "outside-policy", "--policy-clause", "Warranty 3.4", "--clients-affected", "1", "--cost-estimate", "0.00 USD",
      ], expectStage: "STAGE_ACKNOWLEDGE")
      try await E2E.act(stack, ["receipt", late, "--channel", "email", "--message", "We received your report and are on it."], expectStage: "STAGE_ACKNOWLEDGE")
      try await E2E.act(stack, ["decline", late, "--reason", "The helmet was bought after the recall window.", "--policy-clause", "Warranty 3.4"], expectStage: "STAGE_ACKNOWLEDGE", status: "REMEDY_STATUS_DECLINED")
      let declined = try await stack.redress(["remedies", "get", late])
      #expect(!declined.stdout.contains("apologized"), "nobody apologized: \(declined.stdout)")
      #expect(declined.stdout.contains("No apology"))

      // Client 2, in JPY: ¥12,000 is under the ¥15,000 threshold, issued at once.
      try await E2E.act(stack, ["receipt", yen, "--channel", "phone", "--message", "We hear you."], expectStage: "STAGE_ACKNOWLEDGE")
      try await E2E.act(stack, ["apologize", yen, "--channel", "phone", "--message", "We are sorry."], expectStage: "STAGE_PROPOSE")
      try await E2E.act(stack, ["offer", yen, "--fix", "A new helmet", "--compensation", "invoice-credit:12000 JPY"], expectStage: "STAGE_PROPOSE")
      try await E2E.act(stack, ["respond", yen, "--answer", "accepted"], as: "client-tool", expectStage: "STAGE_COMPENSATE")
      let paid = try await E2E.act(stack, ["compensate", yen, "--kind", "invoice-credit", "--amount", "12000 JPY"], expectStage: "STAGE_FIX")
      #expect(E2E.field(paid, "compensation.issued.amount_minor") as? String == "12000")
      #expect(E2E.field(paid, "compensation.budget.amount_minor") as? String == "75000")
      try await Self.finish(stack, yen)

      // Client 1, in USD: 250.00 needs an approver; rejected, then requested again and approved.
      try await E2E.act(stack, ["receipt", usd, "--channel", "email", "--message", "We hear you."], expectStage: "STAGE_ACKNOWLEDGE")
      // Help and parsing offer only the channels an apology may use.
      let legalNotice = try await stack.redress(["apologize", usd, "--channel", "legal-notice", "--message", "Sorry"])
      #expect(legalNotice.status == 64, "\(legalNotice.stderr)")
      #expect(legalNotice.stderr.contains("email") && legalNotice.stderr.contains("in-person") && !legalNotice.stderr.contains("is required"))
      try await E2E.act(stack, ["apologize", usd, "--channel", "email", "--message", "We are sorry."], expectStage: "STAGE_PROPOSE")
      try await E2E.act(stack, ["offer", usd, "--fix", "A new helmet", "--compensation", "refund:250.00 USD"], expectStage: "STAGE_PROPOSE")
      try await E2E.act(stack, ["respond", usd, "--answer", "accepted"], expectStage: "STAGE_COMPENSATE")
      let wrongKind = try await stack.redress(["compensate", usd, "--kind", "invoice-credit", "--amount", "250.00 USD"])
      #expect(wrongKind.status == 4 && wrongKind.stderr.contains("off_terms_reason"), "\(wrongKind.stderr)")
      try await E2E.act(stack, ["compensate", usd, "--kind", "refund", "--amount", "250.00 USD"], expectStage: "STAGE_COMPENSATE")
      let rejected = try await E2E.act(stack, ["reject", usd, "--item", "cmp-1", "--reason", "Refund to the original card, not store credit"], as: "approver", expectStage: "STAGE_COMPENSATE")
      // proto3 JSON leaves a zero out.
      #expect((E2E.field(rejected, "compensation.committed.amount_minor") as? String ?? "0") == "0")
      try await E2E.act(stack, ["compensate", usd, "--kind", "refund", "--amount", "250.00 USD", "--description", "To the original card"], expectStage: "STAGE_COMPENSATE")
      try await E2E.act(stack, ["approve", usd, "--item", "cmp-2"], as: "approver", expectStage: "STAGE_FIX")
      try await Self.finish(stack, usd)
      try await E2E.act(stack, ["note", usd, "--text", "Called twice.\nThe client thanked us."], expectStage: "STAGE_LEARN", status: "REMEDY_STATUS_RESOLVED")

      // The human view shows what happened, section by section; a note's second line keeps its column.
      let shown = try await stack.redress(["remedies", "get", usd])
      #expect(shown.status == 0, "\(shown.stderr)")
      for section in ["CLIENT ANSWERED", "INVESTIGATION", "COMPENSATION", "FIX", "FOLLOW-UP", "LESSON", "TIMELINE"] {
        #expect(shown.stdout.split(separator: "\n").contains { $0 == section }, "no \(section) in:\n\(shown.stdout)")
      }
      #expect(shown.stdout.contains("rejected: Refund to the original card, not store credit"))
      #expect(shown.stdout.contains("Batch 42 helmets were stored below freezing"))
      #expect(shown.stdout.contains("Cold storage cracks helmet shells"))
      let lines = shown.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      let noteLine = try #require(lines.firstIndex { $0.hasSuffix("Called twice.") })
      let column = try #require(lines[noteLine].range(of: "Called twice.")).lowerBound.utf16Offset(in: lines[noteLine])
      #expect(lines[noteLine + 1].trimmingCharacters(in: .whitespaces) == "The client thanked us.")
      #expect(lines[noteLine + 1].range(of: "The client")?.lowerBound.utf16Offset(in: lines[noteLine + 1]) == column)

      // The group: every client reached and closed.
      let listed = try await stack.redress(["remedies", "list", "--group", root, "--json"])
      #expect(listed.status == 0, "\(listed.stderr)")
      let page = try E2E.json(listed.stdout)
      #expect((E2E.field(page, "remedies") as? [[String: Any]])?.count == 3)
      #expect(E2E.field(page, "group.remedies") as? Int == 3)
      #expect(E2E.field(page, "group.resolved") as? Int == 2)
      #expect(E2E.field(page, "group.declined") as? Int == 1)
      #expect(E2E.field(page, "group.reached") as? Int == 3)
      #expect(E2E.field(page, "group.apologized") as? Int == 2)
      #expect(E2E.field(page, "group.compensated") as? Int == 2)
      #expect(E2E.field(page, "group.followed_up") as? Int == 2)
      #expect(E2E.field(page, "group.complete") as? Bool == true)
      let human = try await stack.redress(["remedies", "list", "--group", root])
      #expect(human.stdout.contains("GROUP \(root) (complete"), "\(human.stdout)")
      #expect(human.stdout.contains("250.00 USD, 12000 JPY") || human.stdout.contains("12000 JPY, 250.00 USD"), "\(human.stdout)")
      let resolvedOnly = try await stack.redress(["remedies", "list", "--group", root, "--status", "resolved", "--customer", "c-jpy", "--json"])
      let filtered = try #require(E2E.field(try E2E.json(resolvedOnly.stdout), "remedies") as? [[String: Any]])
      #expect(filtered.map { $0["id"] as? String } == [yen])
    } catch {
      _ = try? await stack.stop()
      throw error
    }
    #expect(try await stack.stop() == 0)
  }

  /// From an active fix to resolved: a named owner, done, verified, confirmed, goodwill skipped, followed up, learned.
  static func finish(_ stack: DevStackProcess, _ remedy: String) async throws {
    try await E2E.act(stack, ["fix", "assign", remedy, "--owner", "Priya Natarajan", "--due", "2099-01-01T00:00:00Z"], expectStage: "STAGE_FIX")
    try await E2E.act(stack, ["fix", "done", remedy], expectStage: "STAGE_FIX")
    try await E2E.act(stack, ["fix", "verify", remedy], expectStage: "STAGE_FIX")
    try await E2E.act(stack, ["fix", "confirm", remedy], as: "client-tool", expectStage: "STAGE_GOODWILL")
    try await E2E.act(stack, ["goodwill", remedy, "--skip-reason", "The replacement was sent overnight."], expectStage: "STAGE_FOLLOW_UP")
    try await E2E.act(stack, ["follow-up", remedy, "--outcome", "satisfied"], expectStage: "STAGE_LEARN")
    try await E2E.act(stack, [
      "learn", remedy, "--lesson", "Cold storage cracks helmet shells", "--prevention", "Heated storage for batch stock",
      "--prevention-owner", "Omar Haddad", "--fingerprint", "warehouse:cold-storage",
    ], expectStage: "STAGE_LEARN", status: "REMEDY_STATUS_RESOLVED")
  }
}

@Suite("redress dev service levels", .serialized)
struct DevServiceLevelTests {
  @Test("redress dev takes the service-level options redress-remediation takes")
  func shortenedTargets() async throws {
    var options: [String] = []
    for priority in 1...4 {
      options += ["--sla-p\(priority)-acknowledge-minutes", "5", "--sla-p\(priority)-resolve-minutes", "30"]
    }
    let stack = try await DevStackProcess(options)
    do {
      let submitted = try await stack.redress([
        "submit", "--customer-id", "c-sla", "--customer-name", "Ada", "--tier", "standard", "--title", "Late delivery",
        "--category", "late-delivery", "--channel", "email",
      ])
      #expect(submitted.status == 0, "\(submitted.stderr)")
      let remedyID = try await EndToEndTests.remedyID(
        of: submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines), in: stack)
      let remedy = try EndToEndTests.json(try await stack.redress(["remedies", "get", remedyID, "--json"]).stdout)
      let formatter = ISO8601DateFormatter()
      formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
      func date(_ key: String) throws -> Date {
        let text = try #require(EndToEndTests.field(remedy, key) as? String)
        return try #require(formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text), "\(key): \(text)")
      }
      #expect(try date("acknowledge_by").timeIntervalSince(try date("opened_at")) == 300)
      #expect(try date("resolve_by").timeIntervalSince(try date("opened_at")) == 1_800)
    } catch {
      _ = try? await stack.stop()
      throw error
    }
    #expect(try await stack.stop() == 0)
    let refused = try await Executables.run("redress", ["dev", "--sla-p1-acknowledge-minutes", "0"])
    #expect(refused.status == 64, "\(refused.stderr)")
    #expect(refused.stderr.contains("sla.p1.acknowledge_minutes"), "\(refused.stderr)")
  }
}
