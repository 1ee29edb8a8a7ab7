import Foundation
import GRPCCore
import Logging
import NIOSSL
import RedressPKI
import RedressSchemas
import RedressService
import RedressTestSupport
import RedressWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Two `redress-intake` and two `redress-remediation` processes on one real PostgreSQL, clients spread over
/// both intakes; one intake and one remediation are killed with SIGKILL mid-load and restarted.
@Suite("Replicas under SIGKILL", .serialized)
struct ReplicaCrashTests {
  typealias Intake = Redress_V1_Intake.Client<WireClientTransport>
  typealias Remediation = Redress_V1_Remediation.Client<WireClientTransport>

  /// Certificates, identities and arguments for the four processes.
  struct ReplicaFiles {
    let directory: URL
    let database: String
    let caPEM: String
    let intakeCertificate: IssuedCertificate
    let common: [String]

    init(directory: URL, database: String) throws {
      self.directory = directory
      self.database = database
      let ca = try CertificateAuthority.create(commonName: "Replica Test CA")
      let server = try ca.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server)
      self.intakeCertificate = try ca.issue(commonName: "intake-service", usage: .client)
      self.caPEM = try ca.root.certificatePEM()
      func write(_ text: String, _ name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
      }
      let caPath = try write(self.caPEM, "ca.pem")
      let certPath = directory.appendingPathComponent("server.pem")
      let keyPath = directory.appendingPathComponent("server-key.pem")
      try server.write(certificateTo: certPath, privateKeyTo: keyPath)
      try self.intakeCertificate.write(
        certificateTo: directory.appendingPathComponent("intake.pem"), privateKeyTo: directory.appendingPathComponent("intake-key.pem"))
      let identities = try write(
        """
        {"identities": [
          {"name": "crash-tool", "tenant": "acme", "roles": ["submit", "read", "operator"],
           "token_sha256": ["\(IdentityDirectory.digest(ofToken: ChildIntakeFiles.token))"]},
          {"name": "intake-service", "tenant": "acme", "roles": ["service"], "certificate_names": ["intake-service"]}
        ]}
        """,
        "identities.json"
      )
      self.common = [
        "--host", "127.0.0.1", "--port", "0", "--tls-cert", certPath.path, "--tls-key", keyPath.path, "--tls-ca", caPath,
        "--identities", identities, "--rate-per-second", "0", "--log-level", "info", "--database", database,
      ]
    }

    /// A remediation replica: every acknowledgement target one minute, deadlines checked every second.
    func remediation(_ name: String) -> [String] {
      self.common + ["--data-dir", self.directory.appendingPathComponent(name).path, "--deadline-check-seconds", "1"]
        + (1...4).flatMap { ["--sla-p\($0)-acknowledge-minutes", "1"] }
    }

    /// An intake replica handing over to remediation at `port`, its claims lapsing after 2 s.
    func intake(_ name: String, remediationPort: Int) -> [String] {
      self.common + [
        "--data-dir", self.directory.appendingPathComponent(name).path,
        "--remediation-host", "127.0.0.1", "--remediation-port", "\(remediationPort)",
        "--remediation-cert", self.directory.appendingPathComponent("intake.pem").path,
        "--remediation-key", self.directory.appendingPathComponent("intake-key.pem").path,
        "--remediation-ca", self.directory.appendingPathComponent("ca.pem").path,
        "--outbox-claim-lease-ms", "2000", "--outbox-outage-probe-ms", "200",
      ]
    }

    func transport(port: Int, presenting certificate: IssuedCertificate? = nil) throws -> WireClientTransport {
      let roots = try NIOSSLCertificate.fromPEMBytes(Array(self.caPEM.utf8))
      let security = ClientSecurity.tls(
        ClientTLS(
          trustRoots: roots,
          certificateChain: try certificate.map { [try NIOSSLCertificate(bytes: $0.certificateDER(), format: .der)] } ?? [],
          privateKey: try certificate.map { try NIOSSLPrivateKey(bytes: $0.privateKeyDER(), format: .der) }
        )
      )
      var config = WireClientTransport.Config.defaults(security: security)
      config.backoff = .init(initial: .milliseconds(20), maximum: .milliseconds(100), multiplier: 2, jitter: 0.1)
      config.connectTimeout = .seconds(5)
      var logger = Logger(label: "replica-test-client")
      logger.logLevel = .critical  // killed servers reset connections; that is the point
      return try WireClientTransport(host: "127.0.0.1", port: port, config: config, logger: logger)
    }
  }

  static let token = bearer(ChildIntakeFiles.token)

  /// Every incident the tenant has, by title (each submission's title is its idempotency key).
  static func incidentsByTitle(_ intake: Intake) async throws -> [String: [Redress_V1_Incident]] {
    var byTitle: [String: [Redress_V1_Incident]] = [:]
    var request = Redress_V1_ListIncidentsRequest.with { $0.pageSize = 500 }
    repeat {
      let page = try await intake.listIncidents(request, metadata: Self.token)
      for incident in page.incidents { byTitle[incident.report.title, default: []].append(incident) }
      request.pageToken = page.nextPageToken
    } while !request.pageToken.isEmpty
    return byTitle
  }

  static func allRemedies(_ remediation: Remediation) async throws -> [Redress_V1_Remedy] {
    var remedies: [Redress_V1_Remedy] = []
    var request = Redress_V1_ListRemediesRequest.with { $0.pageSize = 500 }
    repeat {
      let page = try await remediation.listRemedies(request, metadata: Self.token)
      remedies += page.remedies
      request.pageToken = page.nextPageToken
    } while !request.pageToken.isEmpty
    return remedies
  }

  /// Adds `count` notes to remedy `id` through the first of `desks` that answers, moving to the next when one
  /// goes away (killed) and reading the version again when another writer moved it.
  static func addNotes(_ count: Int, to id: String, through desks: [Remediation]) async {
    var desk = 0
    for note in 0..<count {
      var attempts = 0
      while attempts < 100 {
        attempts += 1
        do {
          let current = try await desks[desk].getRemedy(.with { $0.remedyID = id }, metadata: Self.token)
          _ = try await desks[desk].act(
            .with {
              $0.remedyID = id
              $0.expectedVersion = current.version
              $0.action = .note(.with { $0.text = "note \(note)"; $0.internal = true })
            },
            metadata: Self.token)
          break
        } catch let error as RPCError where error.code == .aborted || error.code == .failedPrecondition {
          continue  // another writer (a deadline) moved the version: read again
        } catch {
          desk = min(desk + 1, desks.count - 1)  // this remediation is gone: go on through the next
          try? await Task.sleep(for: .milliseconds(50))
        }
      }
      try? await Task.sleep(for: .milliseconds(40))  // pacing, so the kill lands mid-way
    }
  }

  @Test(
    "two intakes and two remediations on one PostgreSQL, one of each killed mid-load and restarted: nothing lost or doubled",
    .timeLimit(.minutes(5))
  )
  func killOneOfEach() async throws {
    try await TestPostgres.withDatabase { url in
      let directory = try TemporaryDirectory()
      let files = try ReplicaFiles(directory: directory.url, database: url)
      let remediationExecutable = try ChildService.executable("redress-remediation")
      let intakeExecutable = try ChildService.executable("redress-intake")
      let base = directory.url
      @Sendable func log(_ name: String) -> URL { base.appendingPathComponent("\(name).log") }

      // Both remediations start (and migrate) at once.
      async let startR1 = ChildService.launch(executable: remediationExecutable, arguments: files.remediation("r1"), stderr: log("r1"))
      async let startR2 = ChildService.launch(executable: remediationExecutable, arguments: files.remediation("r2"), stderr: log("r2"))
      let (r1, r2) = try await (startR1, startR2)
      async let startI1 = ChildService.launch(executable: intakeExecutable, arguments: files.intake("i1", remediationPort: r1.port), stderr: log("i1"))
      async let startI2 = ChildService.launch(executable: intakeExecutable, arguments: files.intake("i2", remediationPort: r2.port), stderr: log("i2"))
      let (i1, i2) = try await (startI1, startI2)
      let children = Mutex<[ChildService]>([r1, r2, i1, i2])
      // Whatever happens, no process outlives the test.
      defer { for child in children.withLock({ $0 }) { child.send(SIGKILL) } }

      let ledger = CrashSafetyTests.SharedLedger()
      let watched = CrashSafetyTests.SharedLedger()
      let (watchedVersion, watchedVersionContinuation) = AsyncStream.makeStream(of: Int64.self)

      try await withGRPCClient(transport: try files.transport(port: i1.port)) { i1Client in
        try await withGRPCClient(transport: try files.transport(port: i2.port)) { i2Client in
          try await withGRPCClient(transport: try files.transport(port: r1.port)) { r1Client in
            try await withGRPCClient(transport: try files.transport(port: r2.port)) { r2Client in
              try await withGRPCClient(transport: try files.transport(port: r2.port, presenting: files.intakeCertificate)) { asIntake in
                let intakes = [Intake(wrapping: i1Client), Intake(wrapping: i2Client)]
                let survivor = Remediation(wrapping: r2Client)

                // A remedy watched on the surviving remediation while a desk changes it through the other one.
                let incident = Redress_V1_Incident.with {
                  $0.id = "inc_watched"
                  $0.tenant = "acme"
                  $0.reportedBy = "crash-tool"
                  $0.report = validReport(customerID: "watched", title: "watched")
                  $0.triage = .with { $0.priority = .p3 }
                  $0.status = .awaitingRemediation
                  $0.receivedAt = .init(date: Date())
                }
                let opened = try await Remediation(wrapping: asIntake).openRemedy(.with { $0.incident = incident }).remedy

                try await withThrowingTaskGroup(of: Void.self) { background in
                  background.addTask {
                    try await survivor.watchRemedy(.with { $0.remedyID = opened.id; $0.afterVersion = opened.version }, metadata: Self.token) {
                      for try await update in $0.messages {
                        guard case .change(let change) = update.kind else { continue }
                        watched.withLock { $0.versions.append(change.entry.version) }
                        watchedVersionContinuation.yield(change.entry.version)
                      }
                    }
                  }

                  // The load: eight submitters, half on each intake, and a desk adding notes through remediation 1.
                  async let deskFinished: Void = Self.addNotes(20, to: opened.id, through: [Remediation(wrapping: r1Client), survivor])
                  await withTaskGroup(of: Void.self) { load in
                    for worker in 0..<8 {
                      load.addTask {
                        await CrashSafetyTests.submit(worker: worker, cycle: 0, intake: intakes[worker % 2], ledger: ledger, retry: [])
                      }
                    }
                    // Kill mid-load: once enough has been acknowledged to mean something (a loaded machine may be
                    // slow to get there), then at a random moment.
                    try? await eventually(60, "40 acknowledged submissions", every: .milliseconds(20)) {
                      ledger.withLock { $0.acknowledged.count } >= 40
                    }
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
                    i1.send(SIGKILL)
                    r1.send(SIGKILL)
                    let i1Status = try? await i1.waitForExit()
                    let r1Status = try? await r1.waitForExit()
                    #expect(i1Status == SIGKILL && r1Status == SIGKILL)
                    // The survivors keep taking load a moment longer, then the rest stops.
                    try? await Task.sleep(for: .milliseconds(300))
                    load.cancelAll()
                  }

                  // Restart both; the restarted intake hands over to the restarted remediation.
                  let r1Again = try await ChildService.launch(executable: remediationExecutable, arguments: files.remediation("r1"), stderr: log("r1"))
                  let i1Again = try await ChildService.launch(
                    executable: intakeExecutable, arguments: files.intake("i1", remediationPort: r1Again.port), stderr: log("i1"))
                  children.withLock { $0 += [r1Again, i1Again] }
                  await deskFinished
                  try await withGRPCClient(transport: try files.transport(port: i1Again.port)) { i1AgainClient in
                    let both = [Intake(wrapping: i1AgainClient), intakes[1]]
                    // Keys whose answer was lost are retried through the other intake than before: one incident each.
                    let unanswered = ledger.withLock { Array($0.unanswered) }
                    for key in unanswered {
                      let worker = Int(key.dropFirst().prefix(while: { $0 != "-" })) ?? 0
                      let response = try await both[(worker + 1) % 2].submitIncident(
                        submitRequest(key, CrashSafetyTests.report(title: key)), metadata: Self.token)
                      ledger.withLock { ledger in
                        ledger.unanswered.remove(key)
                        if let earlier = ledger.acknowledged[key], earlier != response.incident.id {
                          ledger.problems.append("\(key) acknowledged as \(earlier) and later as \(response.incident.id)")
                        }
                        ledger.acknowledged[key] = response.incident.id
                      }
                    }
                    let final = ledger.withLock { $0 }
                    if ProcessInfo.processInfo.environment["REDRESS_CRASH_VERBOSE"] != nil {
                      print("replicas: acknowledged \(final.acknowledged.count), unanswered at the kill \(unanswered.count), replays \(final.replays)")
                    }
                    #expect(final.problems.isEmpty, "\(final.problems.prefix(5))")
                    #expect(final.acknowledged.count > 20, "too little load reached the intakes to mean anything")

                    // Every acknowledged incident is stored once and reaches remediation once.
                    let byTitle = try await Self.incidentsByTitle(both[0])
                    let lost = final.acknowledged.filter { key, id in byTitle[key]?.map(\.id) != [id] }
                    #expect(lost.isEmpty, "\(lost.count) acknowledged incidents lost or doubled: \(lost.prefix(5))")
                    #expect(byTitle.values.allSatisfy { $0.count == 1 }, "an incident stored twice")
                    try await eventually(60, "every incident in remediation", every: .milliseconds(500)) {
                      try await Self.incidentsByTitle(both[1]).values.joined().allSatisfy { $0.status == .inRemediation }
                    }
                    let incidents = try await Self.incidentsByTitle(both[1]).values.joined()
                    let remedies = try await Self.allRemedies(survivor)
                    let remediesByIncident = Dictionary(grouping: remedies, by: \.incidentID)
                    #expect(remedies.count == incidents.count + 1)
                    for incident in incidents {
                      #expect(remediesByIncident[incident.id]?.map(\.id) == [incident.remedyID], "incident \(incident.id)")
                    }

                    // Both remediations check deadlines every second: each acknowledgement deadline fires once.
                    let newest = remedies.map(\.acknowledgeBy.date).max() ?? Date()
                    // Nothing can fire before the newest deadline: wait for it, then check each second until all fired.
                    try await Task.sleep(for: .seconds(max(0, newest.timeIntervalSinceNow)))
                    try await eventually(15, "every acknowledgement deadline to fire", every: .seconds(1)) {
                      try await Self.allRemedies(survivor).allSatisfy { $0.escalations.contains { $0.kind == "overdue:acknowledge" } }
                    }
                    for remedy in try await Self.allRemedies(survivor) {
                      #expect(remedy.escalations.filter { $0.kind == "overdue:acknowledge" }.count == 1, "remedy \(remedy.id)")
                      #expect(remedy.timeline.filter { $0.action == "escalate" }.count == 1, "remedy \(remedy.id)")
                    }

                    // The watch on the survivor saw every version after the opening once, in order.
                    let last = try await survivor.getRemedy(.with { $0.remedyID = opened.id }, metadata: Self.token).version
                    #expect(last >= 22, "20 notes and an escalation after the opening")
                    try await withTimeout(30, "the watch to reach version \(last)") {
                      for await version in watchedVersion where version >= last { return }
                    }
                    #expect(watched.withLock { $0.versions } == Array((opened.version + 1)...last))
                  }
                  background.cancelAll()
                  for child in [i1Again, r1Again, i2, r2] { child.send(SIGTERM) }
                  for child in [i1Again, r1Again, i2, r2] { #expect(try await child.waitForExit() == 0) }
                }
              }
            }
          }
        }
      }
    }
  }
}
