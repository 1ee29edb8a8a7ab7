import Foundation
import GRPCCore
import Logging
import RedressIntake
import RedressPKI
import RedressSchemas
import RedressService
import RedressWire
import RedressTestSupport
import ServiceLifecycle

/// The identities every intake test server knows.
enum TestIdentities {
  static let toolA = (name: "tool-a", token: "token-tool-a")
  static let toolB = (name: "tool-b", token: "token-tool-b")
  static let globex = (name: "globex-tool", token: "token-globex")
  static let readerOnly = (name: "acme-reader", token: "token-reader")
  static let submitOnly = (name: "acme-submitter", token: "token-submitter")
  static let scraper = (name: "metrics-scraper", token: "token-metrics")

  static func directory() throws -> IdentityDirectory {
    try IdentityDirectory(entries: [
      .init(name: toolA.name, tenant: "acme", roles: [.submit, .read], tokenSHA256: [IdentityDirectory.digest(ofToken: toolA.token)]),
      .init(name: toolB.name, tenant: "acme", roles: [.submit, .read], tokenSHA256: [IdentityDirectory.digest(ofToken: toolB.token)]),
      .init(name: globex.name, tenant: "globex", roles: [.submit, .read], tokenSHA256: [IdentityDirectory.digest(ofToken: globex.token)]),
      .init(name: readerOnly.name, tenant: "acme", roles: [.read], tokenSHA256: [IdentityDirectory.digest(ofToken: readerOnly.token)]),
      .init(name: submitOnly.name, tenant: "acme", roles: [.submit], tokenSHA256: [IdentityDirectory.digest(ofToken: submitOnly.token)]),
      .init(name: "cert-tool", tenant: "acme", roles: [.submit, .read], certificateNames: ["cert-tool"]),
      .init(name: scraper.name, tenant: "acme", roles: [.metrics], tokenSHA256: [IdentityDirectory.digest(ofToken: scraper.token)]),
    ])
  }
}

/// Bearer-token metadata for a call.
func bearer(_ token: String) -> Metadata {
  ["authorization": "Bearer \(token)"]
}

/// A temporary directory removed when the test ends.
struct TemporaryDirectory: ~Copyable {
  let url: URL

  init() throws {
    self.url = FileManager.default.temporaryDirectory.appendingPathComponent("redress-intake-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
  }

  deinit {
    try? FileManager.default.removeItem(at: self.url)
  }
}

/// A running intake service (IntakeApplication in a ServiceGroup) on 127.0.0.1, a free port, over TLS.
struct IntakeHarness: Sendable {
  let app: IntakeApplication
  let port: Int

  typealias Client = Redress_V1_Intake.Client<WireClientTransport>

  /// Starts intake with `configure` applied to a test configuration, runs `body`, then shuts it down gracefully.
  static func run<T: Sendable>(
    clock: any WallClock = ManualWallClock(start: Date()),
    rateLimit: RateLimiter.Config? = nil,
    postgresURL: String? = nil,
    configure: (inout IntakeConfig) throws -> Void = { _ in },
    _ body: (IntakeHarness) async throws -> T
  ) async throws -> T {
    let directory = try TemporaryDirectory()
    var config = IntakeConfig.defaults
    config.server.port = 0
    config.server.security = try IntakeTestPKI.shared.serverSecurity()
    config.storage.databasePath = directory.url.appendingPathComponent("intake.sqlite").path
    var logger = Logger(label: "intake-test")
    logger.logLevel = .warning
    if let postgresURL {
      let settings = try PostgresSettings(url: postgresURL, password: nil)
      try await IntakeApplication.migrate(settings, logger: logger)
      config.storage.postgres = settings
    }
    try configure(&config)
    let app = try IntakeApplication(
      config: config, directory: try TestIdentities.directory(), rateLimit: rateLimit, clock: clock, logger: logger)
    let group = ServiceGroup.boundedForTests(services: app.services, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      do {
        let address = try await app.listeningAddress
        let harness = IntakeHarness(app: app, port: address.port!)
        let result = try await body(harness)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
      } catch {
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        throw error
      }
    }
  }

  /// Starts intake on a new database of `backend`, runs `body`, then shuts it down gracefully.
  static func run(
    _ backend: Backend,
    clock: any WallClock = ManualWallClock(start: Date()),
    rateLimit: RateLimiter.Config? = nil,
    configure: (inout IntakeConfig) throws -> Void = { _ in },
    _ body: (IntakeHarness) async throws -> Void
  ) async throws {
    try await backend.withPostgresURL { url in
      try await Self.run(clock: clock, rateLimit: rateLimit, postgresURL: url, configure: configure, body)
    }
  }

  /// Runs `body` with an intake client over TLS, presenting `certificate` if given.
  func withClient<T: Sendable>(
    presenting certificate: IssuedCertificate? = nil,
    _ body: (Client) async throws -> T
  ) async throws -> T {
    try await self.withGRPCClient(presenting: certificate) { client in
      try await body(Client(wrapping: client))
    }
  }

  /// Runs `body` with a gRPC client of this server over TLS, for any service it offers.
  func withGRPCClient<T: Sendable>(
    presenting certificate: IssuedCertificate? = nil,
    _ body: (GRPCClient<WireClientTransport>) async throws -> T
  ) async throws -> T {
    var config = WireClientTransport.Config.defaults(
      security: try IntakeTestPKI.shared.clientSecurity(presenting: certificate))
    config.backoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200), multiplier: 2, jitter: 0.1)
    let transport = try WireClientTransport(host: "127.0.0.1", port: self.port, config: config)
    return try await GRPCCore.withGRPCClient(transport: transport) { client in
      try await body(client)
    }
  }
}
