import ArgumentParser
import Foundation
import GRPCCore

#if canImport(Glibc)
import Glibc
#endif

/// `redress-bench`: the benchmark suite of issue 6 (transport scenarios); see docs/BENCHMARKS.md.
@main
struct RedressBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "redress-bench",
    abstract: "Closed-loop benchmarks of the Redress wire against gRPC over HTTP/2 and a raw TLS echo.",
    subcommands: [Run.self, Soak.self, IdleServer.self],
    defaultSubcommand: Run.self
  )
}

/// The scenarios `--scenario` can pick.
enum Scenario: String, CaseIterable, ExpressibleByArgument, Sendable {
  case unary
  case floor
  case streaming
  case intake
  case memory
}

/// Runs the suite and prints one table.
struct Run: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Run the benchmark suite (the default).")

  @Option(help: "Measured seconds per benchmark cell.")
  var duration: Double = 5

  @Option(help: "Warm-up seconds before each cell's measurement.")
  var warmup: Double = 1

  @Flag(help: "Every scenario for about 0.3 s at small concurrency and 200 idle connections: for CI.")
  var smoke = false

  @Option(help: "Run only these scenarios (repeatable): unary, floor, streaming, intake, memory.")
  var scenario: [Scenario] = []

  @Option(help: "Idle connections for the memory scenario (default 5000; 200 with --smoke).")
  var idleConnections: Int?

  @Option(name: .customLong("in-flight"), help: "Unary/floor RPCs in flight (repeatable; default 1, 16, 64, 256).")
  var inFlight: [Int] = []

  @Option(help: "Unary/floor connection counts (repeatable; default 1 and 4).")
  var connections: [Int] = []

  @Option(name: .customLong("intake-clients"), help: "Durable intake: concurrent clients (repeatable; default 1, 16, 64, 256).")
  var intakeClients: [Int] = []

  @Option(help: "Durable intake: client connections the clients share (default 4).")
  var intakeConnections: Int = 4

  @Option(help: "Durable intake: directory for the database (default: the system's temporary directory). It must be on a real disk: fsync on tmpfs costs nothing.")
  var dataDir: String?

  @Option(name: .customLong("intake-postgres"), help: ArgumentHelp("Durable intake: also run it on PostgreSQL, in a scratch database created (and dropped) on the server this URL names (postgres://USER@HOST:PORT/DB?sslmode=...; password in REDRESS_BENCH_POSTGRES_PASSWORD). Its rows follow SQLite's in the same table.", valueName: "url"))
  var intakePostgres: String?

  @Flag(help: "Unary: run only Redress, not HTTP/2 (for profiling one transport).")
  var redressOnly = false

  func run() async throws {
    raiseFileDescriptorLimit()
    let plan = Plan(
      duration: .milliseconds(Int64((self.smoke ? 0.3 : self.duration) * 1000)),
      warmup: .milliseconds(Int64((self.smoke ? 0.1 : self.warmup) * 1000)),
      inFlight: !self.inFlight.isEmpty ? self.inFlight : self.smoke ? [1, 16] : [1, 16, 64, 256],
      connections: !self.connections.isEmpty ? self.connections : [1, 4],
      redressOnly: self.redressOnly,
      streamsInFlight: self.smoke ? 1 : 4,
      streamingMessages: self.smoke ? [(1024, 100), (65536, 10)] : [(1024, 1000), (65536, 100)],
      idleConnections: self.idleConnections ?? (self.smoke ? 200 : 5000)
    )
    let scenarios = Set(self.scenario.isEmpty ? Scenario.allCases : self.scenario)
    let pki = try BenchPKI()
    var table = ResultTable()
    let started = ContinuousClock.now

    if scenarios.contains(.unary) || scenarios.contains(.floor) {
      table.rows += try await Suite.unaryAndFloor(
        plan: plan,
        pki: pki,
        transports: scenarios.contains(.unary),
        floor: scenarios.contains(.floor)
      )
    }
    if scenarios.contains(.streaming) {
      table.rows += try await Suite.streaming(plan: plan, pki: pki)
    }
    if scenarios.contains(.intake) {
      let connections = self.intakeConnections
      var backends: [DurableIntake.Backend] = [.sqlite(dataDirectory: self.dataDir)]
      if let url = self.intakePostgres {
        backends.append(.postgres(serverURL: url, password: ProcessInfo.processInfo.environment["REDRESS_BENCH_POSTGRES_PASSWORD"]))
      }
      for backend in backends {
        let results = try await DurableIntake.run(
          plan: plan,
          pki: pki,
          clientCounts: !self.intakeClients.isEmpty ? self.intakeClients : self.smoke ? [1, 16] : [1, 16, 64, 256],
          connections: connections,
          backend: backend,
          log: progress
        )
        table.rows += results.map {
          .intake(backend: backend.name, clients: $0.clients, connections: connections, result: $0.result)
        }
      }
    }
    if scenarios.contains(.memory) {
      table.rows += try await Suite.memory(plan: plan)
    }

    let elapsed = ContinuousClock.now - started
    print(table.render(title: "redress-bench (duration \(plan.duration), warm-up \(plan.warmup), \(String(format: "%.0f", elapsed.seconds)) s in all)"))
  }
}

/// The server side of the memory scenario, started by it in a child process: prints `PORT n`, then
/// serves until its standard input closes.
struct IdleServer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "idle-server",
    abstract: "Internal: the memory scenario's server process.",
    shouldDisplay: false
  )

  @Option var transport: String = "redress"

  func run() async throws {
    raiseFileDescriptorLimit()
    let pki = try BenchPKI()
    let serve: @Sendable (Int) async -> Void = { port in
      FileHandle.standardOutput.write(Data("PORT \(port)\n".utf8))
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
          _ = FileHandle.standardInput.readDataToEndOfFile()
          continuation.resume()
        }
      }
    }
    switch self.transport {
    case "tls": try await RawTLSEcho.withServer(pki: pki, serve)
    case "http2": try await TransportKind.http2.withServer(pki: pki, serve)
    default: try await TransportKind.redress.withServer(pki: pki, serve)
    }
  }
}

/// What to run, from the flags.
struct Plan: Sendable {
  var duration: Duration
  var warmup: Duration
  var inFlight: [Int]
  var connections: [Int]
  var redressOnly: Bool
  var streamsInFlight: Int
  var streamingMessages: [(size: Int, perRPC: Int)]
  var idleConnections: Int
}

/// Raises the soft open-file limit to the hard one: the memory scenario holds thousands of sockets.
func raiseFileDescriptorLimit() {
  var limit = rlimit()
  guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
  limit.rlim_cur = limit.rlim_max
  _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}

/// Progress goes to standard error so standard output holds only the table.
func progress(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
