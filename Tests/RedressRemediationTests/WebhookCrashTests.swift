import Foundation
import GRPCCore
import NIOSSL
import RedressRemediation
import RedressSchemas
import RedressService
import RedressTestSupport
import RedressWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The webhook outbox across a crash of the `redress-remediation` process.
@Suite("Webhooks across kill -9")
struct WebhookCrashTests {
  static let adminToken = "crash-admin-token"
  static let operatorToken = "crash-operator-token"

  @Test("kill -9 while deliveries are in flight: after a restart exactly the committed events are delivered")
  func killBetweenCommitAndDelivery() async throws {
    let directory = try TemporaryDirectory()
    let pki = RemediationTestPKI.shared
    let url = directory.url
    let certPath = url.appendingPathComponent("server.pem").path
    let keyPath = url.appendingPathComponent("server-key.pem").path
    let caPath = url.appendingPathComponent("ca.pem").path
    try pki.server.write(certificateTo: URL(fileURLWithPath: certPath), privateKeyTo: URL(fileURLWithPath: keyPath))
    try pki.ca.certificatePEM().write(toFile: caPath, atomically: true, encoding: .utf8)
    let identitiesPath = url.appendingPathComponent("identities.json").path
    try """
      {"identities": [
        {"name": "intake-service", "tenant": "acme", "roles": ["service"], "certificate_names": ["intake-service"]},
        {"name": "ada", "tenant": "acme", "roles": ["admin"], "token_sha256": ["\(IdentityDirectory.digest(ofToken: Self.adminToken))"]},
        {"name": "olivia", "tenant": "acme", "roles": ["operator"], "token_sha256": ["\(IdentityDirectory.digest(ofToken: Self.operatorToken))"]}
      ]}
      """.write(toFile: identitiesPath, atomically: true, encoding: .utf8)
    let arguments = [
      "--host", "127.0.0.1", "--port", "0", "--data-dir", url.appendingPathComponent("data").path,
      "--tls-cert", certPath, "--tls-key", keyPath, "--tls-ca", caPath, "--identities", identitiesPath,
      "--log-level", "warning", "--webhooks-allow-private-targets", "--webhooks-ca", caPath,
      "--webhooks-timeout-seconds", "30",
    ]
    let stderr = url.appendingPathComponent("stderr.log")
    let executable = try ChildService.executable("redress-remediation")

    let receiver = WebhookReceiver()
    // Every first attempt hangs: the events are committed and in flight, not delivered, when the process dies.
    receiver.setFallback(.stall(.seconds(8)))
    try await receiver.serve(
      certificateChain: [try NIOSSLCertificate(bytes: pki.server.certificateDER(), format: .der)],
      privateKey: try NIOSSLPrivateKey(bytes: pki.server.privateKeyDER(), format: .der)
    ) { port in
      var child = try await ChildService.launch(executable: executable, arguments: arguments, stderr: stderr)
      var remedies: [Redress_V1_Remedy] = []
      let intake = try WireClientTransport(
        host: "127.0.0.1", port: child.port, config: .defaults(security: try pki.clientSecurity(presenting: pki.intakeService)))
      try await withGRPCClient(transport: intake) { grpc in
        let webhooks = Redress_V1_Webhooks.Client(wrapping: grpc)
        let remediation = Redress_V1_Remediation.Client(wrapping: grpc)
        _ = try await webhooks.createWebhook(
          .with {
            $0.url = "https://localhost:\(port)/hooks"
            $0.eventTypes = [.incidentAccepted, .remedyOpened, .stageChanged]
          }, metadata: ["authorization": "Bearer \(Self.adminToken)"])
        for _ in 0..<3 {
          remedies.append(try await remediation.openRemedy(.with { $0.incident = Incidents.make() }).remedy)
        }
        // A change that does not commit (a stale version) raises no event.
        await #expect(throws: RPCError.self) {
          _ = try await remediation.act(
            .with {
              $0.remedyID = remedies[0].id
              $0.expectedVersion = 7
              $0.action = Do.investigate(.legitimate)
            }, metadata: ["authorization": "Bearer \(Self.operatorToken)"])
        }
      }
      // The first event of each remedy is in flight (its later one waits behind it).
      _ = try await withTimeout(.seconds(60), "three deliveries in flight") { await receiver.waitForRequests(3) }
      child.send(SIGKILL)
      #expect(try await child.waitForExit() == SIGKILL)

      receiver.setFallback(.status(200))
      child = try await ChildService.launch(executable: executable, arguments: arguments, stderr: stderr)
      let expected = Set(remedies.flatMap { remedy in
        [Redress_V1_WebhookEventType.incidentAccepted, .remedyOpened].map {
          WebhookEvents.eventID(remedyID: remedy.id, version: 1, type: $0)
        }
      })
      let delivered = try await withTimeout(.seconds(60), "every committed event delivered after the restart") {
        while true {
          let delivered = Set(receiver.delivered.map(\.eventID))
          if delivered.count >= expected.count { return delivered }
          try await Task.sleep(for: .milliseconds(50))
        }
      }
      #expect(delivered == expected)
      #expect(Set(receiver.requests.map(\.eventID)).subtracting(expected).isEmpty)
      child.send(SIGTERM)
      #expect(try await child.waitForExit() == 0)
    }
  }
}
