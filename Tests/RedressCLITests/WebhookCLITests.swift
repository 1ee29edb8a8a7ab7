import Foundation
import RedressTestSupport
import Testing

/// `redress webhooks` against a real `redress dev` stack and a real HTTPS receiver.
@Suite("redress webhooks")
struct WebhookCLITests {
  @Test("add, receive a signed event (checked with the documented Python recipe), list, deliveries, test, rotate, remove")
  func lifecycle() async throws {
    let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("redress-hook-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: certificates) }
    // The receiver's certificate, from its own CA (the stack is told to trust that CA).
    for words in [
      ["certs", "ca", "--out", certificates.path, "--common-name", "Receiver CA"],
      ["certs", "issue", "--ca", certificates.path, "--name", "localhost", "--dns", "localhost", "--server", "--out", certificates.path],
    ] {
      let made = try await Executables.run("redress", words)
      #expect(made.status == 0, "\(made.stderr)")
    }
    let receiver = WebhookReceiver()
    try await receiver.serve(
      certificatePEMFile: certificates.appendingPathComponent("localhost.pem").path,
      privateKeyPEMFile: certificates.appendingPathComponent("localhost-key.pem").path
    ) { port in
      let stack = try await DevStackProcess([
        "--webhooks-allow-private-targets", "--webhooks-ca", certificates.appendingPathComponent("ca.pem").path,
      ])
      do {
        let added = try await stack.redress([
          "webhooks", "add", "https://localhost:\(port)/redress", "--event", "remedy.opened", "--event", "remedy.stage_changed",
          "--description", "ops pager", "--json",
        ])
        #expect(added.status == 0, "\(added.stderr)")
        let created = try EndToEndTests.json(added.stdout)
        let secret = try #require(EndToEndTests.field(created, "signing_secret") as? String)
        let id = try #require(EndToEndTests.field(created, "webhook.id") as? String)

        let refused = try await stack.redress(["webhooks", "add", "https://localhost:\(port)/x", "--event", "remedy.nonsense"])
        #expect(refused.status == 64)

        let submitted = try await stack.redress([
          "submit", "--customer-id", "c-7", "--customer-name", "Harbor Bikes", "--tier", "premium", "--title", "Late delivery",
          "--category", "late-delivery", "--channel", "email", "--json",
        ])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let request = try await withTimeout(.seconds(60), "the remedy.opened webhook") { await receiver.waitForRequests(1) }[0]
        #expect(request.eventType == "remedy.opened")
        #expect(request.path == "/redress")
        let verify = Executables.packageRoot.appendingPathComponent("tools/webhook-verify.py")
        let body = String(decoding: request.body, as: UTF8.self)
        let good = try await Executables.run(
          executable: URL(fileURLWithPath: "/usr/bin/env"), ["python3", verify.path, "--secret", secret, "--header", request.signature],
          stdin: body)
        #expect(good.status == 0, "\(good.stderr)")
        let forged = try await Executables.run(
          executable: URL(fileURLWithPath: "/usr/bin/env"), ["python3", verify.path, "--secret", secret, "--header", request.signature],
          stdin: body.replacingOccurrences(of: "Late delivery", with: "Early delivery"))
        #expect(forged.status == 1)

        let listed = try await stack.redress(["webhooks", "list"])
        #expect(listed.stdout.contains(id) && listed.stdout.contains("remedy.opened,remedy.stage_changed"))
        #expect(!listed.stdout.contains(secret))
        let deliveries = try await withTimeout(.seconds(30), "the delivery recorded") {
          while true {
            let shown = try await stack.redress(["webhooks", "deliveries", id, "--state", "delivered"])
            if shown.stdout.contains("remedy.opened") { return shown }
            try await Task.sleep(for: .milliseconds(100))
          }
        }
        #expect(deliveries.stdout.contains(" delivered ") && deliveries.stdout.contains("HTTP 200"), "\(deliveries.stdout)")
        let tested = try await stack.redress(["webhooks", "test", id])
        #expect(tested.status == 0 && tested.stdout.contains("delivered: HTTP 200"), "\(tested.stdout)\(tested.stderr)")
        let rotated = try await stack.redress(["webhooks", "rotate-secret", id])
        #expect(rotated.status == 0 && rotated.stdout.contains("whsec_") && !rotated.stdout.contains(secret))
        // Only an admin manages webhooks: the approver identity may not.
        let denied = try await stack.redress(["webhooks", "list"], as: "approver")
        #expect(denied.status == 5, "\(denied.stderr)")
        let removed = try await stack.redress(["webhooks", "remove", id])
        #expect(removed.status == 0 && removed.stdout.contains("removed \(id)"))
        _ = try await stack.stop()
      } catch {
        _ = try? await stack.stop()
        throw error
      }
    }
  }
}

/// `--otlp-endpoint`: spans leave the process over OTLP/HTTP.
@Suite("redress dev --otlp-endpoint")
struct OTLPExportTests {
  @Test("a submit's spans are exported over OTLP/HTTP by both services (flushed at the latest on shutdown)")
  func exportsSpans() async throws {
    let collector = WebhookReceiver()
    try await collector.servePlaintext { port in
      let stack = try await DevStackProcess(["--otlp-endpoint", "http://127.0.0.1:\(port)"])
      do {
        let submitted = try await stack.redress([
          "submit", "--customer-id", "c-8", "--customer-name", "Harbor Bikes", "--tier", "premium", "--title", "Late",
          "--category", "late-delivery", "--channel", "email",
        ])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        // The hand-off to remediation happened (its spans exist) before the stack stops and flushes.
        _ = try await EndToEndTests.remedyID(of: submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines), in: stack)
        #expect(try await stack.stop() == 0)
      } catch {
        _ = try? await stack.stop()
        throw error
      }
      let exports = collector.requests.filter { $0.path == "/v1/traces" }
      #expect(!exports.isEmpty)
      #expect(exports.allSatisfy { $0.headers["content-type"] == "application/x-protobuf" })
      // The protobuf carries each service's name and the RPC span names as plain strings.
      let bytes = exports.reduce(into: Data()) { $0.append($1.body) }
      for expected in ["redress-intake", "redress-remediation", "redress.v1.Intake/SubmitIncident", "redress.v1.Remediation/OpenRemedy"] {
        #expect(bytes.range(of: Data(expected.utf8)) != nil, "\(expected) not exported")
      }
    }
  }
}
