import Foundation
import GRPCCore
import Logging
import NIOSSL
import PostgresNIO
import RedressIntake
import RedressSchemas
import RedressService
import RedressWire
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Scenario 4 of issue 6: `SubmitIncident` end to end through the real intake service.
///
/// The service runs in this process as `IntakeApplication` (what the `redress-intake` executable runs, minus
/// its flag and file parsing) in a `ServiceGroup`: the same `RedressServer`, authentication interceptor,
/// validation, triage, group commit and GRDB store, over the Redress wire and TLS, with the database (SQLite
/// WAL, synchronous FULL, so fsync'd before each answer) in a fresh directory. In-process rather than a child
/// process so the benchmark can read the store's group-commit statistics (transactions and submissions), which
/// say how many fsyncs the run cost.
///
/// Each client is a closed-loop worker with a bearer token; workers share `connections` client connections
/// (worker *i* uses connection *i mod c*), like tools multiplexing calls on a few connections. Every submit
/// carries a unique idempotency key, so every one is a new incident: one insert into `incidents`,
/// `idempotency_keys` and `outbox`, and a read-back.
///
/// On PostgreSQL (`--intake-postgres`) the same service runs on `PostgresIntakeStore` in a scratch database:
/// group commit per replica, keys claimed with `INSERT … ON CONFLICT`, a `NOTIFY` per commit; each commit is
/// durable when PostgreSQL answers it (`synchronous_commit` on, the server's default: its WAL is fsync'd).
enum DurableIntake {
  enum Backend: Sendable {
    /// The embedded default, in a fresh directory under `dataDirectory` (or the temporary directory).
    case sqlite(dataDirectory: String?)
    /// A scratch database created on the server `serverURL` names, and dropped afterwards.
    case postgres(serverURL: String, password: String?)

    var name: String {
      switch self {
      case .sqlite: "SQLite"
      case .postgres: "PostgreSQL"
      }
    }
  }

  struct Result: Sendable {
    var load: LoadResult
    /// Write transactions (each one commit, one WAL fsync) during the whole cell, warm-up included.
    var transactions: Int
    /// Submissions those transactions stored.
    var submissions: Int
    var meanBatch: Double { Double(self.submissions) / Double(max(1, self.transactions)) }
  }

  static let token = "bench-tool-token"

  /// Runs the intake service in a temporary directory (or under `dataDirectory`), then one closed-loop cell
  /// per client count against it, then shuts it down and removes the database.
  static func run(
    plan: Plan,
    pki: BenchPKI,
    clientCounts: [Int],
    connections: Int,
    backend: Backend,
    log: @escaping @Sendable (String) -> Void
  ) async throws -> [(clients: Int, result: Result)] {
    switch backend {
    case .sqlite(let dataDirectory):
      return try await Self.run(
        plan: plan, pki: pki, clientCounts: clientCounts, connections: connections, dataDirectory: dataDirectory,
        postgres: nil, log: log)
    case .postgres(let serverURL, let password):
      return try await Self.withScratchDatabase(serverURL: serverURL, password: password) { settings in
        try await Self.run(
          plan: plan, pki: pki, clientCounts: clientCounts, connections: connections, dataDirectory: nil,
          postgres: settings, log: log)
      }
    }
  }

  /// Creates a database of its own on the server `serverURL` names, migrates it for intake, runs `body` with its
  /// settings, and drops it.
  static func withScratchDatabase<T: Sendable>(
    serverURL: String,
    password: String?,
    _ body: (PostgresSettings) async throws -> T
  ) async throws -> T {
    let logger = quietLogger("redress.bench.postgres")
    let server = try PostgresSettings(url: serverURL, password: password)
    // A generated name (letters and digits only), so it can be spliced into the statement.
    let name = "redress_bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
    try await server.withClient(logger: logger) { client in
      _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
    }
    guard var components = URLComponents(string: serverURL) else { throw BenchError("not a URL: \(serverURL)") }
    components.path = "/\(name)"
    let settings = try PostgresSettings(
      url: components.string ?? "", password: password, maxConnections: 10, connectTimeout: .seconds(5))
    do {
      try await IntakeApplication.migrate(settings, logger: logger)
      let result = try await body(settings)
      try await Self.drop(name, on: server, logger: logger)
      return result
    } catch {
      try? await Self.drop(name, on: server, logger: logger)
      throw error
    }
  }

  private static func drop(_ name: String, on server: PostgresSettings, logger: Logger) async throws {
    try await server.withClient(logger: logger) { client in
      _ = try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
    }
  }

  private static func run(
    plan: Plan,
    pki: BenchPKI,
    clientCounts: [Int],
    connections: Int,
    dataDirectory: String?,
    postgres: PostgresSettings?,
    log: @escaping @Sendable (String) -> Void
  ) async throws -> [(clients: Int, result: Result)] {
    let base = URL(fileURLWithPath: dataDirectory ?? FileManager.default.temporaryDirectory.path)
    let directory = base.appendingPathComponent("redress-bench-intake-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    var config = IntakeConfig.defaults
    config.server.port = 0
    config.server.security = .tls(ServerTLS(certificateChain: [pki.serverCertificate], privateKey: pki.serverKey))
    config.storage.databasePath = directory.appendingPathComponent("intake.sqlite").path
    config.storage.postgres = postgres
    var logger = Logger(label: "redress.bench.intake")
    // The outbox warns once that no remediation address is configured (on purpose: only intake is measured).
    logger.logLevel = .error
    let identities = try IdentityDirectory(entries: [
      .init(
        name: "bench-tool", tenant: "bench", roles: [.submit, .read],
        tokenSHA256: [IdentityDirectory.digest(ofToken: Self.token)]
      )
    ])
    let app = try IntakeApplication(config: config, directory: identities, rateLimit: nil, logger: logger)
    let group = ServiceGroup(services: app.services, logger: logger)

    return try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      do {
        let port = try await app.listeningAddress.port!
        let results = try await Self.withClients(pki: pki, port: port, connections: connections) { clients in
          var results: [(clients: Int, result: Result)] = []
          for count in clientCounts {
            let before = app.store.commitStatistics
            let run = UUID().uuidString.prefix(8)
            let load = try await runClosedLoop(
              concurrency: count, warmup: plan.warmup, duration: plan.duration
            ) { worker in
              try await clients[worker % clients.count].submit("\(run)-\(worker)")
            }
            let after = app.store.commitStatistics
            let result = Result(
              load: load,
              transactions: after.transactions - before.transactions,
              submissions: after.submissions - before.submissions
            )
            log(
              "intake (\(postgres == nil ? "SQLite" : "PostgreSQL")) clients \(count): \(Int(load.perSecond)) submits/s, p99 \(load.percentileMillis(99)) ms, "
                + "\(result.transactions) commits, \(String(format: "%.1f", result.meanBatch)) submits per commit"
            )
            results.append((count, result))
          }
          return results
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return results
      } catch {
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        throw error
      }
    }
  }

  /// One connection's worth of intake client; `submit(prefix)` sends a valid report with a fresh key.
  struct Client: Sendable {
    let client: Redress_V1_Intake.Client<WireClientTransport>
    let sequence = Counter()

    func submit(_ prefix: String) async throws {
      let key = "bench-\(prefix)-\(self.sequence.next())"
      let request = Redress_V1_SubmitIncidentRequest.with {
        $0.idempotencyKey = key
        $0.report = DurableIntake.report
      }
      let response = try await self.client.submitIncident(
        request, metadata: ["authorization": "Bearer \(DurableIntake.token)"]
      )
      // A replay or an empty answer would mean the store did not write a new incident: not a fair measure.
      guard !response.replayed, !response.incident.id.isEmpty else {
        throw BenchError("SubmitIncident with fresh key \(key) answered replayed=\(response.replayed), id \(response.incident.id.debugDescription).")
      }
    }
  }

  /// A thread-safe counter, so keys stay unique when several workers share a connection.
  final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { self.value.withLock { $0 += 1; return $0 } }
  }

  /// A valid report of typical size (about 300 octets encoded), the same for every submit.
  static let report = Redress_V1_IncidentReport.with {
    $0.customer = .with {
      $0.id = "cust-1"
      $0.name = "Ada Customer"
      $0.tier = .standard
    }
    $0.title = "Blue mug shipped instead of red"
    $0.description_p = "Order 1234 contained the wrong colour; the customer sent a photo of the packing slip."
    $0.category = .wrongItem
    $0.channel = .email
    $0.demand = .with {
      $0.text = "Send the right mug."
      $0.amount = .with {
        $0.currency = "USD"
        $0.amountMinor = 1_500
      }
    }
    $0.occurredAt = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-3600))
    $0.links = ["https://shop.example/orders/1234"]
    $0.labels = ["mugs", "batch:42"]
  }

  private static func withClients<R: Sendable>(
    pki: BenchPKI, port: Int, connections: Int, _ body: @Sendable ([Client]) async throws -> R
  ) async throws -> R {
    let security = ClientSecurity.tls(ClientTLS(trustRoots: [pki.caCertificate]))
    let clients = try (0..<max(1, connections)).map { _ in
      GRPCClient(
        transport: try WireClientTransport(
          host: "127.0.0.1", port: port, config: .defaults(security: security),
          logger: quietLogger("redress.bench.intake.client")
        )
      )
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
      for client in clients {
        group.addTask { try await client.runConnections() }
      }
      do {
        let result = try await body(clients.map { Client(client: Redress_V1_Intake.Client(wrapping: $0)) })
        for client in clients { client.beginGracefulShutdown() }
        try await group.waitForAll()
        return result
      } catch {
        group.cancelAll()
        throw error
      }
    }
  }
}
