import ArgumentParser
import Foundation
import GRPCCore
import NIOSSL
import RedressPKI
import RedressSchemas
import RedressService
import RedressWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `redress-bench soak`: both services as separate processes (the real `redress-intake` and
/// `redress-remediation` executables, mutual TLS between them), loaded at half the peak submit rate measured
/// first, sampling each process's RSS and open descriptors every 10 s (issue 11).
struct Soak: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run intake and remediation as processes under steady load; print RSS and descriptors over time."
  )

  @Option(help: "Directory holding the built redress-intake and redress-remediation (e.g. ../.build/release).")
  var binaries: String

  @Option(help: "Seconds of steady load.")
  var duration: Double = 1800

  @Option(help: "Seconds between samples.")
  var interval: Double = 10

  @Option(help: "Seconds of the peak measurement before the soak.")
  var peakSeconds: Double = 20

  @Option(help: "Concurrent clients for the peak measurement.")
  var peakClients: Int = 64

  @Option(help: "Fraction of the measured peak to hold during the soak.")
  var fraction: Double = 0.5

  @Option(help: "Directory for the services' data (default: a new temporary directory). Use a real disk.")
  var dataDir: String?

  func run() async throws {
    raiseFileDescriptorLimit()
    let root = URL(fileURLWithPath: self.dataDir ?? NSTemporaryDirectory()).appendingPathComponent("redress-soak-\(getpid())")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    let setup = try SoakSetup(root: root)
    let remediation = try ServiceProcess.start(
      URL(fileURLWithPath: self.binaries).appendingPathComponent("redress-remediation"),
      setup.remediationArguments(),
      name: "remediation"
    )
    defer { remediation.stop() }
    let remediationPort = try await remediation.port()
    let intake = try ServiceProcess.start(
      URL(fileURLWithPath: self.binaries).appendingPathComponent("redress-intake"),
      setup.intakeArguments(remediationPort: remediationPort),
      name: "intake"
    )
    defer { intake.stop() }
    let intakePort = try await intake.port()
    print("intake pid \(intake.pid) port \(intakePort); remediation pid \(remediation.pid) port \(remediationPort); data \(root.path)")

    let load = SoakLoad(port: intakePort, ca: setup.caCertificate, token: setup.toolToken)
    let peak = try await load.closedLoop(clients: self.peakClients, seconds: self.peakSeconds)
    let target = max(1, peak * self.fraction)
    print(String(format: "peak %.0f submits/s with %d clients over %.0f s; soak at %.0f/s for %.0f s", peak, self.peakClients, self.peakSeconds, target, self.duration))

    let samples = Mutex<[SoakRow]>([])
    let start = ContinuousClock.now
    let intakePID = intake.pid
    let remediationPID = remediation.pid
    let sample: @Sendable (Double) -> Void = { elapsed in
      let row = SoakRow(seconds: elapsed, intake: .read(pid: intakePID), remediation: .read(pid: remediationPID))
      samples.withLock { $0.append(row) }
      let line = String(
        format: "t=%5.0fs  intake rss %7.1f MiB fds %4d   remediation rss %7.1f MiB fds %4d   submitted %d failed %d\n",
        elapsed, row.intake.rssMiB, row.intake.descriptors, row.remediation.rssMiB, row.remediation.descriptors,
        load.submitted, load.failed
      )
      // Unbuffered: the samples reach a pipe or a log file as they are taken.
      FileHandle.standardOutput.write(Data(line.utf8))
    }
    sample(0)
    let duration = self.duration
    let interval = self.interval
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await load.openLoop(ratePerSecond: target, seconds: duration) }
      group.addTask {
        var next = interval
        while next <= duration {
          try await Task.sleep(until: start + .milliseconds(Int64(next * 1000)), clock: .continuous)
          sample(next)
          next += interval
        }
      }
      try await group.waitForAll()
    }
    let rows = samples.withLock { $0 }
    for (name, pick) in [("intake", { (row: SoakRow) in row.intake }), ("remediation", { (row: SoakRow) in row.remediation })] {
      guard let first = rows.first.map(pick), let last = rows.last.map(pick) else { continue }
      let maxRSS = rows.map { pick($0).rssMiB }.max() ?? 0
      let maxFDs = rows.map { pick($0).descriptors }.max() ?? 0
      // The slope over the second half says whether RSS levels off.
      let half = Array(rows.suffix(max(2, rows.count / 2)))
      let minutes = max(1.0 / 60, (half[half.count - 1].seconds - half[0].seconds) / 60)
      let slope = (pick(half[half.count - 1]).rssMiB - pick(half[0]).rssMiB) / minutes
      print(String(
        format: "%@: rss start %.1f end %.1f max %.1f MiB (second half %+.2f MiB/min); fds start %d end %d max %d",
        name, first.rssMiB, last.rssMiB, maxRSS, slope, first.descriptors, last.descriptors, maxFDs
      ))
    }
    print("submitted \(load.submitted), failed \(load.failed)")
    guard load.failed == 0, load.submitted > 0 else {
      throw BenchError("\(load.failed) of \(load.submitted + load.failed) submits failed during the soak")
    }
  }
}

/// One sample of both processes.
struct SoakRow: Sendable {
  var seconds: Double
  var intake: ProcessSample
  var remediation: ProcessSample
}

/// RSS and open descriptors of a process, from /proc.
struct ProcessSample: Sendable {
  var rssMiB: Double
  var descriptors: Int

  static func read(pid: Int32) -> ProcessSample {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
      .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) } ?? 0
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    return ProcessSample(rssMiB: rssKiB / 1024, descriptors: descriptors)
  }
}

/// Certificates, tokens and identities files for the two processes, written under `root`.
struct SoakSetup {
  let root: URL
  let caCertificate: NIOSSLCertificate
  let toolToken = "soak-tool-token"

  init(root: URL) throws {
    self.root = root
    let authority = try CertificateAuthority.create(commonName: "Redress Soak CA")
    let server = try authority.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server)
    let intakeClient = try authority.issue(commonName: "intake-service", usage: .client)
    try authority.root.certificatePEM().write(to: root.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
    try server.write(certificateTo: root.appendingPathComponent("server.pem"), privateKeyTo: root.appendingPathComponent("server-key.pem"))
    try intakeClient.write(certificateTo: root.appendingPathComponent("intake-client.pem"), privateKeyTo: root.appendingPathComponent("intake-client-key.pem"))
    self.caCertificate = try NIOSSLCertificate(bytes: authority.root.certificateDER(), format: .der)
    let digest = Self.sha256Hex(self.toolToken)
    try """
      {"identities": [{"name": "soak-tool", "tenant": "acme", "roles": ["submit", "read"], "token_sha256": ["\(digest)"]}]}
      """.write(to: root.appendingPathComponent("intake-identities.json"), atomically: true, encoding: .utf8)
    try """
      {"identities": [{"name": "intake-service", "tenant": "acme", "roles": ["service"], "certificate_names": ["intake-service"]}]}
      """.write(to: root.appendingPathComponent("remediation-identities.json"), atomically: true, encoding: .utf8)
  }

  static func sha256Hex(_ text: String) -> String {
    IdentityDirectory.digest(ofToken: text)
  }

  private func path(_ name: String) -> String { self.root.appendingPathComponent(name).path }

  private func tls() -> [String] {
    ["--tls-cert", self.path("server.pem"), "--tls-key", self.path("server-key.pem"), "--tls-ca", self.path("ca.pem")]
  }

  func remediationArguments() -> [String] {
    ["--port", "0", "--data-dir", self.path("remediation-data"), "--identities", self.path("remediation-identities.json"),
     "--log-level", "warning", "--rate-per-second", "0"] + self.tls()
  }

  func intakeArguments(remediationPort: Int) -> [String] {
    ["--port", "0", "--data-dir", self.path("intake-data"), "--identities", self.path("intake-identities.json"),
     "--log-level", "warning", "--rate-per-second", "0",
     "--remediation-host", "127.0.0.1", "--remediation-port", "\(remediationPort)",
     "--remediation-cert", self.path("intake-client.pem"), "--remediation-key", self.path("intake-client-key.pem"),
     "--remediation-ca", self.path("ca.pem")] + self.tls()
  }
}

/// A service executable run as a child process; its port read from its `listening on port N` line.
final class ServiceProcess: Sendable {
  let pid: Int32
  private let process: Process
  private let lines: AsyncStream<String>

  private init(process: Process, lines: AsyncStream<String>) {
    self.process = process
    self.pid = process.processIdentifier
    self.lines = lines
  }

  static func start(_ executable: URL, _ arguments: [String], name: String) throws -> ServiceProcess {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    let (lines, continuation) = AsyncStream.makeStream(of: String.self)
    try process.run()
    let handle = output.fileHandleForReading
    Thread.detachNewThread {
      while true {
        let data = handle.availableData
        if data.isEmpty { continuation.finish(); return }
        continuation.yield(String(decoding: data, as: UTF8.self))
      }
    }
    return ServiceProcess(process: process, lines: lines)
  }

  func port() async throws -> Int {
    var text = ""
    for await chunk in self.lines {
      text += chunk
      if let range = text.range(of: "listening on port "), let end = text[range.upperBound...].firstIndex(of: "\n") {
        return Int(text[range.upperBound..<end]) ?? 0
      }
    }
    throw BenchError("the service exited before listening")
  }

  func stop() {
    if self.process.isRunning {
      self.process.terminate()
      self.process.waitUntilExit()
    }
  }
}

/// Submits to intake: closed loop (as fast as `clients` allow) or open loop (a fixed rate).
final class SoakLoad: Sendable {
  private let port: Int
  private let ca: NIOSSLCertificate
  private let token: String
  private let counts = Mutex((submitted: 0, failed: 0))

  init(port: Int, ca: NIOSSLCertificate, token: String) {
    self.port = port
    self.ca = ca
    self.token = token
  }

  var submitted: Int { self.counts.withLock { $0.submitted } }
  var failed: Int { self.counts.withLock { $0.failed } }

  private func withClient<R: Sendable>(_ body: @Sendable (Redress_V1_Intake.Client<WireClientTransport>) async throws -> R) async throws -> R {
    let transport = try WireClientTransport(
      host: "127.0.0.1", port: self.port,
      config: .defaults(security: .tls(ClientTLS(trustRoots: [self.ca]))),
      logger: quietLogger("redress.bench.soak")
    )
    return try await withGRPCClient(transport: transport) { try await body(Redress_V1_Intake.Client(wrapping: $0)) }
  }

  private func submit(_ client: Redress_V1_Intake.Client<WireClientTransport>, key: String) async {
    do {
      _ = try await client.submitIncident(
        .with { $0.idempotencyKey = key; $0.report = DurableIntake.report },
        metadata: ["authorization": "Bearer \(self.token)"]
      )
      self.counts.withLock { $0.submitted += 1 }
    } catch {
      self.counts.withLock { $0.failed += 1 }
    }
  }

  /// Submits per second with `clients` workers for `seconds`.
  func closedLoop(clients: Int, seconds: Double) async throws -> Double {
    let before = self.submitted
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    try await self.withClient { client in
      await withTaskGroup(of: Void.self) { group in
        for worker in 0..<clients {
          group.addTask {
            var index = 0
            while ContinuousClock.now < deadline {
              index += 1
              await self.submit(client, key: "peak-\(worker)-\(index)")
            }
          }
        }
      }
    }
    return Double(self.submitted - before) / seconds
  }

  /// Starts one submit every 1/`ratePerSecond` s for `seconds`, whatever the answers' latency.
  func openLoop(ratePerSecond: Double, seconds: Double) async throws {
    let start = ContinuousClock.now
    let total = Int(ratePerSecond * seconds)
    try await self.withClient { client in
      // Discarding: a finished submit leaves nothing behind, however long the soak.
      await withDiscardingTaskGroup { group in
        for index in 0..<total {
          let due = start + .nanoseconds(Int64(Double(index) / ratePerSecond * 1e9))
          try? await Task.sleep(until: due, clock: .continuous)
          group.addTask { await self.submit(client, key: "soak-\(index)") }
        }
      }
    }
  }
}
