import Foundation
import GRPCCore
import NIOCore
import NIOSSL
import RedressRemediation
import RedressSchemas
import RedressTestSupport
import SwiftProtobuf
import Testing

/// Outbound webhooks end to end: a real HTTPS receiver in the test process, the service delivering its outbox.
@Suite("Webhooks")
struct WebhookTests {
  /// Runs the service with delivery allowed to the loopback receiver (trusting the test CA) and fast retries,
  /// and the receiver, then `body`.
  static func run(
    _ backend: Backend,
    configure: @escaping @Sendable (inout WebhookConfig) -> Void = { _ in },
    _ body: @escaping @Sendable (RemediationHarness, WebhookReceiver, String) async throws -> Void
  ) async throws {
    let pki = RemediationTestPKI.shared
    let ca = try NIOSSLCertificate(bytes: pki.ca.certificateDER(), format: .der)
    let receiver = WebhookReceiver()
    try await receiver.serve(
      certificateChain: [try NIOSSLCertificate(bytes: pki.server.certificateDER(), format: .der)],
      privateKey: try NIOSSLPrivateKey(bytes: pki.server.privateKeyDER(), format: .der)
    ) { port in
      try await RemediationHarness.run(backend) { config in
        config.webhooks.targets = .init(allowPrivateAddresses: true)
        config.webhooks.additionalTrustRoots = [ca]
        config.webhooks.retryBase = .milliseconds(20)
        config.webhooks.retryCap = .milliseconds(100)
        config.webhooks.requestTimeout = .seconds(2)
        configure(&config.webhooks)
      } _: { harness in
        try await body(harness, receiver, "https://localhost:\(port)/hooks")
      }
    }
  }

  static func event(_ request: WebhookReceiver.Request) throws -> Redress_V1_WebhookEvent {
    var options = JSONDecodingOptions()
    options.ignoreUnknownFields = true
    return try Redress_V1_WebhookEvent(jsonUTF8Data: request.body, options: options)
  }

  static func wait(_ receiver: WebhookReceiver, for count: Int) async throws -> [WebhookReceiver.Request] {
    try await withTimeout(.seconds(60), "\(count) webhook requests") { await receiver.waitForRequests(count) }
  }

  @Test("each committed change's events arrive signed, in version order, once each, as protobuf JSON", arguments: Backend.allCases)
  func deliversSignedEventsInOrder(backend: Backend) async throws {
    try await Self.run(backend) { harness, receiver, url in
      let created = try await harness.webhooks(People.ada).create(url: url, description: "ops pager")
      #expect(created.signingSecret.hasPrefix("whsec_") && created.signingSecret.count == 70)
      #expect(created.webhook.eventTypes.isEmpty)
      var walk = try await Walk.open(harness)
      try await walk.toPropose()
      // accepted + opened (v1), investigate → acknowledge (v2), apologize → propose (v3).
      let requests = try await Self.wait(receiver, for: 4)
      let events = try requests.map(Self.event)
      #expect(events.map(\.type) == ["incident.accepted", "remedy.opened", "remedy.stage_changed", "remedy.stage_changed"])
      #expect(events.map(\.remedy.version) == [1, 1, 2, 3])
      #expect(Set(events.map(\.id)).count == 4)
      #expect(events.allSatisfy { $0.tenant == "acme" && $0.remedy.id == walk.remedy.id && $0.remedy.timeline.isEmpty })
      #expect(events[0].incident.id == walk.remedy.incidentID)
      #expect(events[3].entry.action == "apologize")
      #expect(events[3].remedy.currentStage == .propose)
      for request in requests {
        #expect(WebhookSignature.verify(header: request.signature, body: request.body, secret: created.signingSecret, now: Date()))
        #expect(!WebhookSignature.verify(header: request.signature, body: request.body + Data(" ".utf8), secret: created.signingSecret, now: Date()))
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.path == "/hooks")
      }
      #expect(requests.map(\.eventID) == events.map(\.id))
      #expect(requests.map(\.eventType) == events.map(\.type))
      // A signature older than the replay window is refused.
      #expect(!WebhookSignature.verify(header: requests[0].signature, body: requests[0].body, secret: created.signingSecret, now: Date() + 600))

      // The receiver has answered; the dispatcher records each outcome just after.
      let deliveries = try await Self.eventually("every outcome recorded") {
        let all = try await harness.webhooks(People.ada).deliveries(created.webhook.id).deliveries
        return all.allSatisfy { $0.state == .delivered } ? all : []
      }
      #expect(deliveries.count == 4)
      #expect(deliveries.allSatisfy { $0.attempts == 1 && $0.lastHTTPStatus == 200 && $0.hasDeliveredAt })
      #expect(deliveries.map(\.remedyVersion) == [3, 2, 1, 1])  // newest first
      // Pages of two, newest first, then none left.
      let first = try await harness.webhooks(People.ada).deliveries(created.webhook.id, pageSize: 2)
      #expect(first.deliveries.map(\.id) == deliveries.prefix(2).map(\.id))
      let second = try await harness.webhooks(People.ada).deliveries(created.webhook.id, pageSize: 2, pageToken: first.nextPageToken)
      #expect(second.deliveries.map(\.id) == deliveries.suffix(2).map(\.id))
      #expect(second.nextPageToken.isEmpty)
    }
  }

  @Test("a client-view webhook gets only what the client sees; a staff webhook only the types it chose")
  func clientViewAndTypeFilter() async throws {
    try await Self.run(.sqlite) { harness, receiver, url in
      let admin = harness.webhooks(People.ada)
      let client = try await admin.create(url: url + "/client", types: [.remedyOpened, .stageChanged], clientView: true)
      let staff = try await admin.create(url: url + "/staff", types: [.escalated])
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.legitimate))
      try await walk.act(Do.escalate("The client called the CEO."))
      // Client: opened, stage changed (investigate → acknowledge). Staff: the escalation.
      let requests = try await Self.wait(receiver, for: 3)
      let byPath = Dictionary(grouping: requests, by: \.path)
      let clientEvents = try (byPath["/hooks/client"] ?? []).map(Self.event)
      let staffEvents = try (byPath["/hooks/staff"] ?? []).map(Self.event)
      #expect(clientEvents.map(\.type) == ["remedy.opened", "remedy.stage_changed"])
      #expect(clientEvents.allSatisfy { !$0.remedy.hasInvestigation && $0.remedy.owner.isEmpty && !$0.hasIncident })
      // The investigation's entry is internal: the client view carries no entry for it.
      #expect(!clientEvents[1].hasEntry)
      #expect(staffEvents.map(\.type) == ["remedy.escalated"])
      #expect(staffEvents[0].remedy.escalations.last?.reason == "The client called the CEO.")
      for request in byPath["/hooks/client"] ?? [] {
        #expect(WebhookSignature.verify(header: request.signature, body: request.body, secret: client.signingSecret, now: Date()))
        #expect(!WebhookSignature.verify(header: request.signature, body: request.body, secret: staff.signingSecret, now: Date()))
      }
      // Asking a client-view webhook for a staff matter is refused with the field named.
      await #expect { try await admin.create(url: url, types: [.escalated], clientView: true) } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("event_types[0]")
      }
    }
  }

  @Test("failures retry with backoff, a timeout counts as one, a failing event holds back the remedy's later ones, and the last failure dead-letters until replayed", arguments: Backend.allCases)
  func retriesDeadLettersAndReplays(backend: Backend) async throws {
    try await Self.run(backend, configure: { $0.maxAttempts = 3; $0.requestTimeout = .seconds(3) }) { harness, receiver, url in
      let admin = harness.webhooks(People.ada)
      let webhook = try await admin.create(url: url, types: [.remedyOpened, .stageChanged]).webhook
      // remedy.opened: 500, then no answer in time, then 500 again: dead after three attempts.
      receiver.script([.status(500), .stall(.seconds(6)), .status(503)])
      var walk = try await Walk.open(harness)
      try await walk.act(Do.investigate(.legitimate))
      // Then remedy.stage_changed (v2), held back until the first was dead-lettered, is delivered.
      let requests = try await Self.wait(receiver, for: 4)
      #expect(requests.map(\.eventType) == ["remedy.opened", "remedy.opened", "remedy.opened", "remedy.stage_changed"])
      #expect(requests.map { $0.headers["redress-delivery-attempt"] } == ["1", "2", "3", "1"])
      let firstID = requests[0].eventID
      #expect(requests[1].eventID == firstID && requests[2].eventID == firstID)

      let dead = try await Self.eventually("the first delivery is dead") {
        try await admin.deliveries(webhook.id, states: [.dead]).deliveries
      }
      #expect(dead.count == 1)
      #expect(dead[0].attempts == 3 && dead[0].lastHTTPStatus == 503 && dead[0].eventID == firstID)
      #expect(dead[0].lastError.contains("503"))
      let metrics = harness.app.server.metrics
      await metrics.refresh()
      let scrape = MetricsScrape(status: 200, contentType: "", body: String(decoding: metrics.exposition(), as: UTF8.self))
      #expect(scrape.value(#"redress_webhook_attempts_total{outcome="failed"}"#) == 2)
      #expect(scrape.value(#"redress_webhook_attempts_total{outcome="dead"}"#) == 1)
      #expect(scrape.value("redress_webhook_deliveries_dead") == 1)

      // Replaying sends the same event (same id) again, and it is delivered.
      #expect(try await admin.replay(webhook.id) == 1)
      let again = try await Self.wait(receiver, for: 5)
      #expect(again[4].eventID == firstID)
      #expect(again[4].headers["redress-delivery-attempt"] == "1")
      let delivered = try await Self.eventually("the replay is delivered") {
        try await admin.deliveries(webhook.id, states: [.delivered]).deliveries.filter { $0.eventID == firstID }
      }
      #expect(delivered.count == 1)
      // Replaying a named delivery that is not dead or delivered changes nothing; an unknown id is refused.
      await #expect { try await admin.replay(webhook.id, deliveries: ["nonsense"]) } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("delivery_ids[0]")
      }
    }
  }

  @Test("a receiver's 429 Retry-After is honoured; a redirect is not followed")
  func retryAfterAndRedirects() async throws {
    try await Self.run(.sqlite) { harness, receiver, url in
      let admin = harness.webhooks(People.ada)
      let webhook = try await admin.create(url: url, types: [.remedyOpened]).webhook
      receiver.script([.status(429, retryAfter: "3600")])
      _ = try await harness.open()
      _ = try await Self.wait(receiver, for: 1)
      let pending = try await Self.eventually("the attempt is recorded") {
        try await admin.deliveries(webhook.id, states: [.pending]).deliveries.filter { $0.attempts == 1 }
      }
      // Due in about an hour (not the 20 ms base backoff).
      #expect(pending[0].nextAttemptAt.date.timeIntervalSinceNow > 3_000)
      #expect(pending[0].lastHTTPStatus == 429)
      #expect(try await admin.delete(webhook.id).droppedDeliveries == 1)

      let redirected = try await admin.create(url: url + "/moved", types: [.remedyOpened]).webhook
      receiver.script([.redirect(url + "/elsewhere")])
      _ = try await harness.open()
      let failed = try await Self.eventually("the redirect is recorded as a failure") {
        try await admin.deliveries(redirected.id).deliveries.filter { $0.attempts >= 1 && $0.lastHTTPStatus == 302 }
      }
      #expect(failed[0].lastError.contains("does not follow redirects"))
      #expect(!receiver.requests.contains { $0.path == "/hooks/elsewhere" })
    }
  }

  @Test("rotation: deliveries carry a signature by the new and the previous secret until the previous expires")
  func rotation() async throws {
    try await Self.run(.sqlite) { harness, receiver, url in
      let admin = harness.webhooks(People.ada)
      let created = try await admin.create(url: url, types: [.remedyOpened])
      let rotated = try await admin.rotate(created.webhook.id, keepPreviousSeconds: 3_600)
      #expect(rotated.signingSecret != created.signingSecret)
      #expect(rotated.webhook.hasPreviousSecretExpiresAt)
      _ = try await harness.open()
      let request = try await Self.wait(receiver, for: 1)[0]
      #expect(request.signature.components(separatedBy: "v1=").count == 3)
      #expect(WebhookSignature.verify(header: request.signature, body: request.body, secret: rotated.signingSecret, now: Date()))
      #expect(WebhookSignature.verify(header: request.signature, body: request.body, secret: created.signingSecret, now: Date()))
      // TestWebhook sends a webhook.test event now and says what the receiver answered.
      receiver.script([.status(500)])
      let test = try await admin.test(created.webhook.id)
      #expect(test.httpStatus == 500 && test.error.contains("500"))
      let ok = try await admin.test(created.webhook.id)
      #expect(ok.httpStatus == 200 && ok.error.isEmpty)
      #expect(receiver.requests.last?.eventType == "webhook.test")
      await #expect { try await admin.rotate(created.webhook.id, keepPreviousSeconds: 8 * 86_400) } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("keep_previous_seconds")
      }
    }
  }

  @Test("the timer's follow-up announcement, escalations, fix and resolution raise their events")
  func playbookEvents() async throws {
    try await Self.run(.sqlite) { harness, receiver, url in
      let admin = harness.webhooks(People.ada)
      _ = try await admin.create(
        url: url,
        types: [.fixAssigned, .fixDone, .followUpDue, .remedyResolved, .compensationAwaitingApproval])
      var walk = try await Walk.open(harness)
      try await walk.toCompensate(compensation: [30_000])
      try await walk.act(Do.compensate(30_000, key: "big"))  // above the approval threshold: waits
      try await walk.act(Do.approve(walk.remedy.compensation.items[0].id), as: People.alice)
      try await walk.fixEverything()
      try await walk.act(Do.goodwill())
      harness.clock.advance(by: 3 * 86_400)
      _ = try await harness.app.timer.checkDeadlines()
      let afterTimer = try await harness.desk(People.olivia).get(walk.remedy.id)
      // Three days also passed the P2 resolve target: one entry records the escalation and the announcement.
      #expect(afterTimer.timeline.last?.summary.contains("The follow-up call with the client is due.") == true)
      #expect(afterTimer.followUp.dueAnnouncedFor == afterTimer.followUp.scheduledAt)
      walk.remedy = afterTimer
      // The timer announces it once.
      #expect(try await harness.app.timer.checkDeadlines().isEmpty)
      try await walk.act(Do.followUp(.satisfied))
      try await walk.act(Do.learn())
      let types = try await Self.wait(receiver, for: 5).map(\.eventType)
      #expect(types == ["compensation.awaiting_approval", "fix.assigned", "fix.done", "follow_up.due", "remedy.resolved"])
    }
  }

  @Test("only an admin manages webhooks, each tenant sees only its own, and bad input names its field")
  func accessAndValidation() async throws {
    try await RemediationHarness.run(.sqlite) { harness in
      let admin = harness.webhooks(People.ada)
      await #expect { try await harness.webhooks(People.olivia).list() } throws: { error in
        (error as? RPCError)?.code == .permissionDenied && "\(error)".contains("admin")
      }
      // By default only public https targets: loopback, private ranges and plain http are refused.
      for (url, words) in [
        ("https://127.0.0.1/x", "loopback"), ("https://10.1.2.3/x", "private"), ("https://169.254.169.254/latest", "link-local"),
        ("http://example.com/x", "https://"), ("ftp://example.com", "https://"), ("https://user:pw@example.com/", "password"),
        ("https://[::1]/x", "loopback"), ("https://[::ffff:10.0.0.1]/x", "private"), ("not a url", "URL"),
      ] {
        await #expect("\(url)") { try await admin.create(url: url) } throws: { error in
          (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("url") && "\(error)".contains(words)
        }
      }
      await #expect { try await admin.create(url: "https://8.8.8.8/x", types: [.test]) } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("event_types[0]")
      }
      await #expect { try await admin.create(url: "https://8.8.8.8/x", types: [.remedyOpened, .remedyOpened]) } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && "\(error)".contains("repeats")
      }
      let created = try await admin.create(url: "https://8.8.8.8/x", types: [.remedyOpened])
      #expect(try await admin.list().map(\.id) == [created.webhook.id])
      #expect(try await admin.list()[0].url == "https://8.8.8.8/x")
      // Globex's admin neither sees nor touches acme's webhook.
      let globex = harness.webhooks(People.gus)
      #expect(try await globex.list().isEmpty)
      for call in [
        { _ = try await globex.delete(created.webhook.id) }, { _ = try await globex.rotate(created.webhook.id) },
        { _ = try await globex.deliveries(created.webhook.id) }, { _ = try await globex.replay(created.webhook.id) },
        { _ = try await globex.test(created.webhook.id) },
      ] as [@Sendable () async throws -> Void] {
        await #expect { try await call() } throws: { ($0 as? RPCError)?.code == .notFound }
      }
      #expect(try await admin.delete(created.webhook.id).droppedDeliveries == 0)
      #expect(try await admin.list().isEmpty)
    }
  }

  @Test("a tenant has at most the configured number of webhooks")
  func perTenantLimit() async throws {
    try await RemediationHarness.run(.sqlite, configure: { $0.webhooks.maxSubscriptionsPerTenant = 2 }) { harness in
      let admin = harness.webhooks(People.ada)
      _ = try await admin.create(url: "https://8.8.8.8/a")
      _ = try await admin.create(url: "https://8.8.8.8/b")
      await #expect { try await admin.create(url: "https://8.8.8.8/c") } throws: { error in
        (error as? RPCError)?.code == .resourceExhausted && "\(error)".contains("delete one")
      }
    }
  }

  @Test("address ranges: public addresses pass, every internal range is named")
  func addressRanges() throws {
    func range(_ text: String) throws -> String? {
      WebhookTargetPolicy.forbiddenRange(of: try SocketAddress(ipAddress: text, port: 443))
    }
    #expect(try range("93.184.216.34") == nil)
    #expect(try range("2606:2800:220:1:248:1893:25c8:1946") == nil)
    #expect(try range("127.0.0.2") == "loopback")
    #expect(try range("172.20.0.1") == "private")
    #expect(try range("172.32.0.1") == nil)
    #expect(try range("192.168.1.1") == "private")
    #expect(try range("100.100.0.1") == "shared (carrier-grade NAT)")
    #expect(try range("0.0.0.0") == "reserved")
    #expect(try range("224.0.0.1") == "multicast")
    #expect(try range("::") == "unspecified")
    #expect(try range("fe80::1") == "link-local")
    #expect(try range("fd00::1") == "private")
    #expect(try range("ff02::1") == "multicast")
    #expect(try range("::ffff:127.0.0.1") == "loopback")
    #expect(try range("64:ff9b::a9fe:a9fe") == "link-local")
    #expect(WebhookSender.retryAfter("120") == .seconds(120))
    #expect(WebhookSender.retryAfter("999999999") == WebhookConfig.maxRetryAfter)
    #expect(WebhookSender.retryAfter("soon") == nil)
  }

  /// Re-reads until `read` returns a non-empty answer (the dispatcher records outcomes asynchronously).
  static func eventually<T: Sendable>(_ what: String, _ read: @escaping @Sendable () async throws -> [T]) async throws -> [T] {
    try await withTimeout(.seconds(60), what) {
      while true {
        let value = try await read()
        if !value.isEmpty { return value }
        try await Task.sleep(for: .milliseconds(20))
      }
    }
  }
}
