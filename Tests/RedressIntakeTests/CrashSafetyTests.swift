import Foundation
import RedressTestSupport
import GRPCCore
import Logging
import NIOSSL
import RedressSchemas
import RedressWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the real `redress-intake` executable, kills it with SIGKILL at random moments under concurrent load,
/// restarts it, and checks that every acknowledged incident is there exactly once.
///
/// `REDRESS_CRASH_CYCLES` sets the number of kill cycles (default 20); set it to hundreds for a soak run.
@Suite("Crash safety", .serialized)
struct CrashSafetyTests {
  static let submitters = 8

  /// What the submitters learned: acknowledged keys and their incident ids, and keys whose answer was lost.
  struct Ledger {
    var acknowledged: [String: String] = [:]
    var unanswered: Set<String> = []
    var replays = 0
    var problems: [String] = []
    /// Versions a watcher saw, in order (the replica test's watch).
    var versions: [Int64] = []
  }

  /// The ledger, shared by the submitters.
  final class SharedLedger: Sendable {
    private let ledger = Mutex(Ledger())
    func withLock<T: Sendable>(_ body: (inout Ledger) -> T) -> T { self.ledger.withLock { body(&$0) } }
  }

  static func client(port: Int, files: ChildIntakeFiles) throws -> WireClientTransport {
    let roots = try NIOSSLCertificate.fromPEMBytes(Array(files.caPEM.utf8))
    var config = WireClientTransport.Config.defaults(security: .tls(ClientTLS(trustRoots: roots)))
    config.backoff = .init(initial: .milliseconds(20), maximum: .milliseconds(100), multiplier: 2, jitter: 0.1)
    config.connectTimeout = .seconds(5)
    var logger = Logger(label: "crash-test-client")
    logger.logLevel = .error  // every kill resets connections; that is the point, not news
    return try WireClientTransport(host: "127.0.0.1", port: port, config: config, logger: logger)
  }

  static func report(title: String) -> Redress_V1_IncidentReport {
    validReport(customerID: "crash-customer", title: title)
  }

  /// Submits until the server goes away: first the keys whose answers were lost (same key, same report), then
  /// new ones. Records every answer in `ledger`.
  static func submit(
    worker: Int,
    cycle: Int,
    intake: Redress_V1_Intake.Client<WireClientTransport>,
    ledger: SharedLedger,
    retry: [String]
  ) async {
    var queue = retry
    var counter = 0
    while !Task.isCancelled {
      let key: String
      if queue.isEmpty {
        key = "w\(worker)-c\(cycle)-n\(counter)"
        counter += 1
      } else {
        key = queue.removeFirst()
      }
      ledger.withLock { _ = $0.unanswered.insert(key) }
      do {
        var options = CallOptions.defaults
        options.timeout = .seconds(20)
        let response = try await intake.submitIncident(
          submitRequest(key, Self.report(title: key)), metadata: bearer(ChildIntakeFiles.token), options: options)
        ledger.withLock { ledger in
          ledger.unanswered.remove(key)
          if response.replayed { ledger.replays += 1 }
          if response.incident.report.title != key {
            ledger.problems.append("\(key) answered with the incident of \(response.incident.report.title)")
          }
          if let earlier = ledger.acknowledged[key], earlier != response.incident.id {
            ledger.problems.append("\(key) acknowledged as \(earlier) and later as \(response.incident.id)")
          }
          ledger.acknowledged[key] = response.incident.id
        }
      } catch {
        // The server was killed (or is not up yet): the key stays unanswered and is retried next cycle.
        return
      }
    }
  }

  @Test("every acknowledged incident survives SIGKILL at random moments, exactly once", .timeLimit(.minutes(10)))
  func killCycles() async throws {
    let cycles = Int(ProcessInfo.processInfo.environment["REDRESS_CRASH_CYCLES"] ?? "") ?? 20
    let directory = try TemporaryDirectory()
    let files = try ChildIntakeFiles(directory: directory.url)
    let executable = try ChildService.executable()
    let stderr = directory.url.appendingPathComponent("intake.log")
    let ledger = SharedLedger()

    for cycle in 0..<cycles {
      let child = try await ChildService.launch(executable: executable, arguments: files.arguments, stderr: stderr)
      let retry = ledger.withLock { Array($0.unanswered) }
      let transport = try Self.client(port: child.port, files: files)
      try await withGRPCClient(transport: transport) { client in
        let intake = Redress_V1_Intake.Client(wrapping: client)
        await withTaskGroup(of: Void.self) { group in
          for worker in 0..<Self.submitters {
            let mine = retry.enumerated().filter { $0.offset % Self.submitters == worker }.map(\.element)
            group.addTask {
              await Self.submit(worker: worker, cycle: cycle, intake: intake, ledger: ledger, retry: mine)
            }
          }
          // Let the load run for a random moment, then kill without warning.
          try? await Task.sleep(for: .milliseconds(Int.random(in: 50...400)))
          child.send(SIGKILL)
          let status = try? await child.waitForExit()
          #expect(status == SIGKILL, "cycle \(cycle): expected death by SIGKILL, got \(String(describing: status))")
          await group.waitForAll()
        }
      }
    }

    // Restart once more: every acknowledged incident must be there, once.
    let child = try await ChildService.launch(executable: executable, arguments: files.arguments, stderr: stderr)
    let transport = try Self.client(port: child.port, files: files)
    let final = ledger.withLock { $0 }
    if ProcessInfo.processInfo.environment["REDRESS_CRASH_VERBOSE"] != nil {
      print("crash cycles: \(cycles), acknowledged \(final.acknowledged.count), replays \(final.replays), unanswered at the end \(final.unanswered.count)")
    }
    try await withGRPCClient(transport: transport) { client in
      let intake = Redress_V1_Intake.Client(wrapping: client)
      var byTitle: [String: [String]] = [:]
      var request = Redress_V1_ListIncidentsRequest.with { $0.pageSize = 500 }
      repeat {
        let page = try await intake.listIncidents(request, metadata: bearer(ChildIntakeFiles.token))
        for incident in page.incidents {
          byTitle[incident.report.title, default: []].append(incident.id)
        }
        request.pageToken = page.nextPageToken
      } while !request.pageToken.isEmpty

      #expect(final.problems.isEmpty, "\(final.problems.prefix(5))")
      #expect(final.acknowledged.count > cycles, "too little load reached the server to mean anything")
      var missing: [String] = []
      for (key, id) in final.acknowledged where byTitle[key] != [id] {
        missing.append("\(key): acknowledged \(id), stored \(byTitle[key] ?? [])")
      }
      #expect(missing.isEmpty, "\(missing.count) acknowledged incidents lost or duplicated: \(missing.prefix(5))")
      let duplicated = byTitle.filter { $0.value.count > 1 }
      #expect(duplicated.isEmpty, "submissions stored twice: \(duplicated.prefix(5))")

      // Keys whose answer was lost in the last kill: a retry now yields one incident, never a second.
      for key in final.unanswered {
        let response = try await intake.submitIncident(
          submitRequest(key, Self.report(title: key)), metadata: bearer(ChildIntakeFiles.token))
        if let stored = byTitle[key] {
          #expect(response.replayed && [response.incident.id] == stored)
        } else {
          #expect(!response.replayed)
        }
      }
    }
    child.send(SIGTERM)
    #expect(try await child.waitForExit() == 0)
  }

  @Test("SIGTERM lets in-flight submissions finish, closes the store and exits 0")
  func gracefulShutdown() async throws {
    let directory = try TemporaryDirectory()
    let files = try ChildIntakeFiles(directory: directory.url)
    let stderr = directory.url.appendingPathComponent("intake.log")
    let child = try await ChildService.launch(
      executable: try ChildService.executable(), arguments: files.arguments, stderr: stderr)
    let transport = try Self.client(port: child.port, files: files)
    try await withGRPCClient(transport: transport) { client in
      let intake = Redress_V1_Intake.Client(wrapping: client)
      let first = try await intake.submitIncident(
        submitRequest("before-term", Self.report(title: "before-term")), metadata: bearer(ChildIntakeFiles.token))
      #expect(!first.replayed)
    }
    child.send(SIGTERM)
    #expect(try await child.waitForExit() == 0)
    let log = try String(contentsOf: stderr, encoding: .utf8)
    #expect(log.contains("incident store closed"))
    #expect(!log.contains(ChildIntakeFiles.token))
    #expect(!log.contains("Blue mug"), "payload text must not be logged at info level")

    let again = try await ChildService.launch(
      executable: try ChildService.executable(), arguments: files.arguments, stderr: stderr)
    let againTransport = try Self.client(port: again.port, files: files)
    try await withGRPCClient(transport: againTransport) { client in
      let intake = Redress_V1_Intake.Client(wrapping: client)
      let list = try await intake.listIncidents(.init(), metadata: bearer(ChildIntakeFiles.token))
      #expect(list.incidents.map(\.report.title) == ["before-term"])
    }
    again.send(SIGTERM)
    #expect(try await again.waitForExit() == 0)
  }
}
