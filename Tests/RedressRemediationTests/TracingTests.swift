import Foundation
import GRPCCore
import InMemoryTracing
import Logging
import NIOSSL
import RedressIntake
import RedressRemediation
import RedressSchemas
import RedressService
import RedressTestSupport
import RedressTracing
import RedressWire
import ServiceLifecycle
import SwiftProtobuf
import Testing
import Tracing

/// Traces across both services: a submit through intake, the outbox hand-off into remediation, and out to a
/// webhook, recorded by an in-memory tracer shared by the test's client and both services.
@Suite("Traces")
struct TracingTests {
  static let submitterToken = "token-submitter"

  @Test("one submit is one connected trace: client, intake, the outbox hand-off, remediation, the webhook delivery")
  func oneSubmitOneTrace() async throws {
    let tracer = InMemoryTracer()
    let pki = RemediationTestPKI.shared
    let receiver = WebhookReceiver()
    try await receiver.serve(
      certificateChain: [try NIOSSLCertificate(bytes: pki.server.certificateDER(), format: .der)],
      privateKey: try NIOSSLPrivateKey(bytes: pki.server.privateKeyDER(), format: .der)
    ) { receiverPort in
      try await RemediationHarness.run(database: .sqlite(try TemporaryDirectory()), tracer: tracer) { config in
        config.webhooks.targets = .init(allowPrivateAddresses: true)
        config.webhooks.additionalTrustRoots = [try! NIOSSLCertificate(bytes: pki.ca.certificateDER(), format: .der)]
      } _: { harness in
        _ = try await harness.webhooks(People.ada).create(
          url: "https://localhost:\(receiverPort)/hooks", types: [.remedyOpened])
        tracer.clearAll()
        let directory = try TemporaryDirectory()
        try await Self.withIntake(remediationPort: harness.port, tracer: tracer, directory: directory) { intakePort in
          // The caller's own span: everything below must join its trace.
          let incident = try await tracer.withSpan("caller: report a mistake") { _ in
            try await Self.submit(to: intakePort, tracer: tracer)
          }
          let request = try await withTimeout(.seconds(60), "the webhook") { await receiver.waitForRequests(1) }[0]
          #expect(request.eventType == "remedy.opened")
          #expect(try Redress_V1_WebhookEvent(jsonUTF8Data: request.body).remedy.incidentID == incident.id)

          let spans = try await withTimeout(.seconds(30), "the webhook span") {
            while true {
              let spans = tracer.finishedSpans
              if spans.contains(where: { $0.operationName.hasPrefix("webhook ") }) { return spans }
              try await Task.sleep(for: .milliseconds(20))
            }
          }
          let root = try #require(spans.first { $0.operationName == "caller: report a mistake" })
          func span(_ name: String, _ kind: SpanKind) throws -> FinishedInMemorySpan {
            try #require(spans.first { $0.operationName == name && $0.kind == kind }, "no \(kind) span \(name)")
          }
          let clientSubmit = try span("redress.v1.Intake/SubmitIncident", .client)
          let serverSubmit = try span("redress.v1.Intake/SubmitIncident", .server)
          let outboxCall = try span("redress.v1.Remediation/OpenRemedy", .client)
          let serverOpen = try span("redress.v1.Remediation/OpenRemedy", .server)
          let webhook = try span("webhook remedy.opened", .client)
          // One trace, each hop the child of the one before it.
          for hop in [clientSubmit, serverSubmit, outboxCall, serverOpen, webhook] {
            #expect(hop.spanContext.traceID == root.spanContext.traceID, "\(hop.operationName) left the trace")
          }
          #expect(clientSubmit.spanContext.parentSpanID == root.spanContext.spanID)
          #expect(serverSubmit.spanContext.parentSpanID == clientSubmit.spanContext.spanID)
          #expect(outboxCall.spanContext.parentSpanID == serverSubmit.spanContext.spanID)
          #expect(serverOpen.spanContext.parentSpanID == outboxCall.spanContext.spanID)
          #expect(webhook.spanContext.parentSpanID == serverOpen.spanContext.spanID)
          // The receiver got the delivery's context in its headers.
          #expect(request.headers[InMemoryTracer.traceIDKey] == root.spanContext.traceID)
          #expect(request.headers[InMemoryTracer.spanIDKey] == webhook.spanContext.spanID)
        }
      }
    }
  }

  @Test("the W3C trace id reaches the logs; a malformed traceparent is ignored")
  func traceIDFromTraceparent() {
    #expect(TraceID.traceID(fromTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == "4bf92f3577b34da6a3ce929d0e0e4736")
    #expect(TraceID.traceID(fromTraceparent: "00-short-00f067aa0ba902b7-01") == nil)
    #expect(TraceID.traceID(fromTraceparent: "garbage") == nil)
    let provider = TraceID.metadataProvider
    #expect(TraceID.$current.withValue("4bf92f3577b34da6a3ce929d0e0e4736") { provider.get() }["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736")
    #expect(provider.get()["trace_id"] == nil)
  }

  /// Runs a real intake (SQLite, TLS with the test PKI) handing off to remediation on `remediationPort`.
  static func withIntake(
    remediationPort: Int, tracer: any Tracer, directory: TemporaryDirectory, _ body: (Int) async throws -> Void
  ) async throws {
    let pki = RemediationTestPKI.shared
    var config = IntakeConfig.defaults
    config.server.host = "127.0.0.1"
    config.server.port = 0
    config.server.security = try pki.serverSecurity()
    config.storage.databasePath = directory.url.appendingPathComponent("intake.sqlite").path
    config.outbox.remediation = .init(
      host: "127.0.0.1", port: remediationPort, security: try pki.clientSecurity(presenting: pki.intakeService))
    var logger = Logger(label: "intake-trace-test")
    logger.logLevel = .warning
    let identities = try IdentityDirectory(entries: [
      .init(
        name: "submitter", tenant: "acme", roles: [.submit, .read],
        tokenSHA256: [IdentityDirectory.digest(ofToken: Self.submitterToken)])
    ])
    let intake = try IntakeApplication(config: config, directory: identities, rateLimit: nil, tracer: tracer, logger: logger)
    let group = ServiceGroup.boundedForTests(services: intake.services, logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      do {
        try await body(try await intake.listeningAddress.port!)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
      } catch {
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        throw error
      }
    }
  }

  /// Submits one report as a traced client would (a client span, its context in the call's metadata).
  static func submit(to port: Int, tracer: any Tracer) async throws -> Redress_V1_Incident {
    let transport = try WireClientTransport(
      host: "127.0.0.1", port: port, config: .defaults(security: try RemediationTestPKI.shared.clientSecurity()))
    return try await withGRPCClient(transport: transport, interceptors: [ClientTracingInterceptor(tracer: tracer)]) { client in
      try await Redress_V1_Intake.Client(wrapping: client).submitIncident(
        .with {
          $0.idempotencyKey = "trace-1"
          $0.report = .with {
            $0.customer = .with {
              $0.id = "cust-9"
              $0.name = "Northwind"
              $0.tier = .standard
            }
            $0.title = "Wrong item shipped"
            $0.category = .wrongItem
            $0.channel = .email
          }
        },
        metadata: ["authorization": "Bearer \(Self.submitterToken)"]
      ).incident
    }
  }
}
