import Foundation
import Testing

/// Issue 15, part 4: a whole run's logs, read as an operator's log pipeline would.
@Suite("Logs of a whole run")
struct LogTests {
  @Test("at info level a whole run logs JSON lines, each request's lines with its request id, and no token, key or customer text")
  func wholeRun() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redress-logs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let logFile = directory.appendingPathComponent("dev.log")
    let stack = try await DevStackProcess(["--log-level", "info", "--log-format", "json"], logFile: logFile)
    // Customer free text, each with a marker no log line may carry.
    let secrets = ["Customer-Name-Q7", "Title-Text-K3", "Description-Text-W9", "Demand-Text-P2", "shop.example/order-Z5"]
    var tokens: [String] = []
    do {
      let tokenData = try Data(contentsOf: stack.dataDirectory.appendingPathComponent("tokens.json"))
      tokens = Array(try #require(JSONSerialization.jsonObject(with: tokenData) as? [String: String]).values)
      let submitted = try await stack.redress([
        "submit", "--customer-id", "c-77", "--customer-name", secrets[0], "--tier", "premium",
        "--title", secrets[1], "--description", secrets[2], "--category", "wrong-item", "--channel", "email",
        "--demand", secrets[3], "--demand-amount", "120.00 USD", "--link", "https://\(secrets[4])",
      ])
      #expect(submitted.status == 0, "\(submitted.stderr)")
      let incidentID = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      #expect(try await stack.redress(["incidents", "get", incidentID]).status == 0)
      // A call refused for its token is logged too (without the token).
      #expect(try await stack.redress(["incidents", "get", incidentID], as: "metrics").status != 0)
      #expect(try await stack.stop() == 0)
    } catch {
      _ = try? await stack.stop()
      throw error
    }

    let text = try String(contentsOf: logFile, encoding: .utf8)
    let lines = text.split(separator: "\n")
    #expect(lines.count > 5)
    var objects: [[String: Any]] = []
    for line in lines {
      let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
      #expect(object != nil, "not a JSON object: \(line)")
      if let object { objects.append(object) }
    }
    for object in objects {
      #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(object)")
    }
    let accepted = try #require(objects.first { $0["message"] as? String == "incident accepted" })
    let requestID = try #require(accepted["request_id"] as? String)
    #expect(requestID.count == 16)
    #expect(objects.contains { $0["message"] as? String == "remedy opened" })
    for token in tokens { #expect(!text.contains(token), "a token is in the logs") }
    for secret in secrets { #expect(!text.contains(secret), "\(secret) is in the logs") }
    #expect(!text.contains("PRIVATE KEY"))
  }
}
