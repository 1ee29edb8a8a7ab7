import Foundation
import RedressTestSupport
import Testing

/// The real `redress` binary against a real `redress dev` stack: every step of a remedy through the CLI.
@Suite("redress CLI end to end", .serialized)
struct EndToEndTests {
  static func json(_ text: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(object as? [String: Any], "not a JSON object: \(text)")
  }

  static func field(_ object: [String: Any], _ path: String) -> Any? {
    var current: Any? = object
    for key in path.split(separator: ".") {
      current = (current as? [String: Any])?[String(key)]
    }
    return current
  }

  /// The remedy intake's outbox opened for `incidentID`, once it has. Intake offers no push for an incident's
  /// status, so the CLI is asked again (every 100 ms, at most 30 s) until the remedy id appears.
  static func remedyID(of incidentID: String, in stack: DevStackProcess) async throws -> String {
    try await withTimeout(.seconds(30), "the remedy to open") {
      while true {
        let incident = try await stack.redress(["incidents", "get", incidentID, "--json"])
        if let remedy = Self.field(try Self.json(incident.stdout), "remedy_id") as? String, !remedy.isEmpty {
          return remedy
        }
        try await Task.sleep(for: .milliseconds(100))
      }
    }
  }

  /// Runs an action with `--json` and returns the remedy it printed, checking it moved to `status`/`stage`.
  @discardableResult
  static func act(
    _ stack: DevStackProcess,
    _ arguments: [String],
    as identity: String? = nil,
    expectStage stage: String,
    status: String = "REMEDY_STATUS_OPEN",
    sourceLocation: SourceLocation = #_sourceLocation
  ) async throws -> [String: Any] {
    let result = try await stack.redress(arguments + ["--json"], as: identity)
    #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
    let remedy = try Self.json(result.stdout)
    #expect(Self.field(remedy, "current_stage") as? String == stage, "\(arguments[0]): \(result.stdout)", sourceLocation: sourceLocation)
    #expect(Self.field(remedy, "status") as? String == status, "\(arguments[0])", sourceLocation: sourceLocation)
    return remedy
  }

  @Test("a remedy goes from submit to resolved through the CLI, and watch sees every change")
  func wholeRemedy() async throws {
    let stack = try await DevStackProcess()
    do {
      // Submit.
      let submitted = try await stack.redress([
        "submit", "--customer-id", "c-1042", "--customer-name", "Harbor Bikes", "--tier", "premium",
        "--title", "Shipped blue helmets instead of red", "--category", "wrong-item", "--channel", "email",
        "--demand", "Swap them this week", "--demand-amount", "120.00 USD", "--json",
      ])
      #expect(submitted.status == 0, "\(submitted.stderr)")
      let response = try Self.json(submitted.stdout)
      let incidentID = try #require(Self.field(response, "incident.id") as? String)
      #expect(incidentID.hasPrefix("inc_"))
      #expect(Self.field(response, "incident.reported_by") as? String == "operator")

      let remedyID = try await Self.remedyID(of: incidentID, in: stack)

      // Watch the remedy from its first version, in the background, until it closes.
      async let watched = Executables.run(
        "redress",
        ["remedies", "watch", remedyID, "--json", "--until-closed", "--profile", stack.profile.path],
        timeout: .seconds(120)
      )

      try await Self.act(stack, ["investigate", remedyID, "--root-cause", "Label printer swapped SKUs", "--verdict", "legitimate", "--policy-clause", "Returns 2.1", "--clients-affected", "1", "--orders-affected", "1", "--cost-estimate", "80.00 USD"], expectStage: "STAGE_ACKNOWLEDGE")
      try await Self.act(stack, ["apologize", remedyID, "--channel", "phone", "--message", "Called Dana"], expectStage: "STAGE_PROPOSE")
      try await Self.act(stack, ["offer", remedyID, "--fix", "Ship red helmets overnight", "--compensation", "invoice-credit:120.00 USD:next invoice", "--goodwill", "Free fitting"], expectStage: "STAGE_PROPOSE")
      try await Self.act(stack, ["respond", remedyID, "--answer", "accepted"], expectStage: "STAGE_COMPENSATE")
      let requested = try await Self.act(stack, ["compensate", remedyID, "--kind", "invoice-credit", "--amount", "120.00 USD"], expectStage: "STAGE_COMPENSATE")
      let items = try #require(Self.field(requested, "compensation.items") as? [[String: Any]])
      let item = try #require(items.first)
      #expect(item["state"] as? String == "LEDGER_ITEM_STATE_AWAITING_APPROVAL")
      let itemID = try #require(item["id"] as? String)

      // The requester may not approve their own request; a second identity does.
      let selfApproval = try await stack.redress(["approve", remedyID, "--item", itemID])
      #expect(selfApproval.status == 5, "operator lacks the approver role: \(selfApproval.stderr)")
      let approved = try await Self.act(stack, ["approve", remedyID, "--item", itemID], as: "approver", expectStage: "STAGE_FIX")
      #expect(Self.field(approved, "compensation.issued.amount_minor") as? String == "12000")

      try await Self.act(stack, ["fix", "assign", remedyID, "--owner", "Priya Natarajan", "--due", "2099-01-01T00:00:00Z"], expectStage: "STAGE_FIX")
      try await Self.act(stack, ["fix", "done", remedyID], expectStage: "STAGE_FIX")
      try await Self.act(stack, ["fix", "verify", remedyID], expectStage: "STAGE_FIX")
      try await Self.act(stack, ["fix", "confirm", remedyID, "--notes", "Dana confirmed"], expectStage: "STAGE_GOODWILL")
      try await Self.act(stack, ["goodwill", remedyID, "--description", "Free fitting session", "--value", "40.00 USD"], expectStage: "STAGE_FOLLOW_UP")
      try await Self.act(stack, ["follow-up", remedyID, "--outcome", "satisfied", "--medium", "call"], expectStage: "STAGE_LEARN")
      let resolved = try await Self.act(stack, ["learn", remedyID, "--lesson", "Printer maps SKUs by position", "--prevention", "Scan-verify labels", "--prevention-owner", "Omar", "--fingerprint", "warehouse:label-printer"], expectStage: "STAGE_LEARN", status: "REMEDY_STATUS_RESOLVED")
      let finalVersion = try #require(Int64(Self.field(resolved, "version") as? String ?? ""))

      // The watch saw a snapshot, then every version after it, once, in order.
      let watch = try await watched
      #expect(watch.status == 0, "\(watch.stderr)")
      let updates = try watch.stdout.split(separator: "\n").map { try Self.json(String($0)) }
      let first = try #require(updates.first)
      let snapshotVersion = try #require(Int64(Self.field(first, "snapshot.version") as? String ?? ""))
      let changeVersions = updates.dropFirst().compactMap { Int64(Self.field($0, "change.entry.version") as? String ?? "") }
      #expect(changeVersions == Array((snapshotVersion + 1)...finalVersion), "watch saw \(changeVersions)")

      // Reads agree with what the actions answered.
      let listed = try await stack.redress(["remedies", "list", "--json"])
      let remedies = try #require(Self.field(try Self.json(listed.stdout), "remedies") as? [[String: Any]])
      #expect(remedies.contains { $0["id"] as? String == remedyID && $0["status"] as? String == "REMEDY_STATUS_RESOLVED" })
    } catch {
      _ = try? await stack.stop()
      throw error
    }
    #expect(try await stack.stop() == 0, "Ctrl-C shuts both services down cleanly")
  }

  @Test("bad input and out-of-order actions fail with what to fix and the documented exit code")
  func errors() async throws {
    let stack = try await DevStackProcess()
    do {
      // Every problem with a submit is listed, with its field path; exit 2.
      let invalid = try await stack.redress(["submit", "--customer-id", "c-1", "--title", "", "--category", "other"])
      #expect(invalid.status == 2, "\(invalid.stderr)")
      #expect(invalid.stderr.contains("report.title"))
      #expect(invalid.stderr.contains("report.customer.name"))

      // Unknown ids: exit 3.
      let missing = try await stack.redress(["incidents", "get", "inc_00000000000000000000000000"])
      #expect(missing.status == 3, "\(missing.stderr)")

      // An unknown token: exit 5.
      let forged = try await Executables.run(
        "redress",
        ["incidents", "list", "--profile", stack.profile.path],
        environment: ["REDRESS_TOKEN": "not-a-real-token"]
      )
      #expect(forged.status == 5, "\(forged.stderr)")

      // Command-line mistakes: exit 64 with usage.
      let usage = try await stack.redress(["investigate", "rem_x", "--root-cause", "x", "--verdict", "maybe"])
      #expect(usage.status == 64, "\(usage.stderr)")

      // An action before its stage: exit 4, saying what must happen first.
      let submitted = try await stack.redress([
        "submit", "--customer-id", "c-2", "--customer-name", "Ada", "--tier", "standard", "--title", "Late delivery",
        "--category", "late-delivery", "--channel", "email",
      ])
      #expect(submitted.status == 0, "\(submitted.stderr)")
      let incidentID = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      let remedyID = try await Self.remedyID(of: incidentID, in: stack)
      let early = try await stack.redress(["offer", remedyID, "--fix", "Refund shipping"])
      #expect(early.status == 4, "\(early.stderr)")
      #expect(early.stderr.lowercased().contains("investigat"), "names the step that must come first: \(early.stderr)")

      // A stale version: exit 4.
      let stale = try await stack.redress(["note", remedyID, "--text", "hello", "--expected-version", "99"])
      #expect(stale.status == 4, "\(stale.stderr)")
    } catch {
      _ = try? await stack.stop()
      throw error
    }
    #expect(try await stack.stop() == 0)
  }
}
