import Foundation
import GRPCCore
import Logging
import RedressPKI
import RedressRemediation
import RedressSchemas
import RedressService
import RedressTestSupport
import RedressWire
import ServiceLifecycle
import Tracing

/// Who the test servers know: tenant "acme" with one identity per role, and "globex" for isolation tests.
enum People {
  static let olivia = (name: "olivia", token: "token-olivia")  // operator
  static let omar = (name: "omar", token: "token-omar")  // operator
  static let alice = (name: "alice", token: "token-alice")  // approver and operator
  static let aaron = (name: "aaron", token: "token-aaron")  // approver
  static let lena = (name: "lena", token: "token-lena")  // legal
  static let portal = (name: "portal", token: "token-portal")  // client tool
  static let rita = (name: "rita", token: "token-rita")  // read
  static let greta = (name: "greta", token: "token-greta")  // globex operator
  static let scout = (name: "scout", token: "token-scout")  // metrics scraper
  static let ada = (name: "ada", token: "token-ada")  // admin (webhooks)
  static let gus = (name: "gus", token: "token-gus")  // globex admin

  static func directory() throws -> IdentityDirectory {
    func entry(_ person: (name: String, token: String), _ tenant: String, _ roles: Set<Role>) -> IdentityDirectory.Entry {
      .init(name: person.name, tenant: tenant, roles: roles, tokenSHA256: [IdentityDirectory.digest(ofToken: person.token)])
    }
    return try IdentityDirectory(entries: [
      entry(olivia, "acme", [.operator]),
      entry(omar, "acme", [.operator]),
      entry(alice, "acme", [.approver, .operator]),
      entry(aaron, "acme", [.approver]),
      entry(lena, "acme", [.legal]),
      entry(portal, "acme", [.clientTool]),
      entry(rita, "acme", [.read]),
      entry(greta, "globex", [.operator, .read]),
      entry(scout, "acme", [.metrics]),
      entry(ada, "acme", [.admin]),
      entry(gus, "globex", [.admin]),
      // Intake as deployed: mutual TLS with its client certificate; service identities have no token.
      .init(name: "intake-mtls", tenant: "acme", roles: [.service], certificateNames: ["intake-service"]),
    ])
  }
}

/// A temporary directory removed when the test ends.
final class TemporaryDirectory: Sendable {
  let url: URL

  init() throws {
    self.url = FileManager.default.temporaryDirectory.appendingPathComponent("redress-remediation-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
  }

  deinit {
    try? FileManager.default.removeItem(at: self.url)
  }
}

extension Backend {
  /// Runs `body` with a new, empty database of this kind.
  func withDatabase(_ body: (TestDatabase) async throws -> Void) async throws {
    try await self.withPostgresURL { url in
      try await body(url.map { .postgres(url: $0) } ?? .sqlite(try TemporaryDirectory()))
    }
  }
}

/// Data that outlives one run of the service (restart tests run twice on the same one).
enum TestDatabase: Sendable {
  case sqlite(TemporaryDirectory)
  case postgres(url: String)
  /// A PostgreSQL URL used as is (no migration), failing fast (2 s to connect): for a server that is down
  /// or comes and goes.
  case postgresAsIs(url: String)
}

/// A running remediation service (RemediationApplication in a ServiceGroup) on 127.0.0.1, a free port, over TLS,
/// with a manual clock.
struct RemediationHarness: Sendable {
  typealias Client = Redress_V1_Remediation.Client<WireClientTransport>

  let app: RemediationApplication
  let client: Client
  /// A client presenting intake's certificate (mutual TLS): the service identity `intake-mtls`.
  let intakeClient: Client
  /// The same connection's `redress.v1.Webhooks` client.
  let webhooksClient: Redress_V1_Webhooks.Client<WireClientTransport>
  let clock: ManualWallClock
  let group: ServiceGroup
  let port: Int

  /// Runs `body` with a second client that presents `certificate` in the TLS handshake.
  func withClient<T: Sendable>(presenting certificate: IssuedCertificate, _ body: (Client) async throws -> T) async throws -> T {
    let security = try RemediationTestPKI.shared.clientSecurity(presenting: certificate)
    let transport = try WireClientTransport(host: "127.0.0.1", port: self.port, config: .defaults(security: security))
    return try await withGRPCClient(transport: transport) { try await body(Client(wrapping: $0)) }
  }

  /// Begins graceful shutdown, as SIGTERM would.
  func shutdown() async {
    await self.group.triggerGracefulShutdown()
  }

  /// Starts the service on the SQLite database in `directory`, runs `body` with a client, then shuts down.
  static func run<T: Sendable>(
    directory: TemporaryDirectory? = nil,
    clock: ManualWallClock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000)),
    configure: (inout RemediationConfig) -> Void = { _ in },
    _ body: (RemediationHarness) async throws -> T
  ) async throws -> T {
    try await Self.run(database: .sqlite(try directory ?? TemporaryDirectory()), clock: clock, configure: configure, body)
  }

  /// Starts the service on a new database of `backend`, runs `body`, then shuts down.
  static func run(
    _ backend: Backend,
    clock: ManualWallClock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000)),
    configure: (inout RemediationConfig) -> Void = { _ in },
    _ body: (RemediationHarness) async throws -> Void
  ) async throws {
    try await backend.withDatabase { database in
      try await Self.run(database: database, clock: clock, configure: configure, body)
    }
  }

  /// Starts the service on `database`, runs `body` with a client, then shuts down gracefully.
  static func run<T: Sendable>(
    database: TestDatabase,
    clock: ManualWallClock = ManualWallClock(start: Date(timeIntervalSince1970: 1_800_000_000)),
    serveMetrics: Bool = false,
    tracer: any Tracer = NoOpTracer(),
    configure: (inout RemediationConfig) -> Void = { _ in },
    _ body: (RemediationHarness) async throws -> T
  ) async throws -> T {
    var config = RemediationConfig.defaults
    // The background loop checks once at start and then not again during a test; tests call checkDeadlines().
    config.deadlineCheckInterval = .seconds(3_600)
    configure(&config)
    var logger = Logger(label: "remediation-test")
    logger.logLevel = .warning
    let appDatabase = try await Self.open(database, logger: logger)
    let app = try RemediationApplication(
      config: config,
      server: .init(
        host: "127.0.0.1", port: 0, security: try RemediationTestPKI.shared.serverSecurity(),
        metrics: serveMetrics ? MetricsListener(host: "127.0.0.1", port: 0) : nil),
      database: appDatabase,
      directory: try People.directory(),
      rateLimiter: nil,
      clock: clock,
      tracer: tracer,
      logger: logger
    )
    let group = ServiceGroup.boundedForTests(services: app.services, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      do {
        let port = try await app.listeningAddress.port!
        var transportConfig = WireClientTransport.Config.defaults(security: try RemediationTestPKI.shared.clientSecurity())
        transportConfig.backoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200), multiplier: 2, jitter: 0.1)
        let transport = try WireClientTransport(host: "127.0.0.1", port: port, config: transportConfig)
        var intakeConfig = WireClientTransport.Config.defaults(
          security: try RemediationTestPKI.shared.clientSecurity(presenting: RemediationTestPKI.shared.intakeService)
        )
        intakeConfig.backoff = transportConfig.backoff
        let intakeTransport = try WireClientTransport(host: "127.0.0.1", port: port, config: intakeConfig)
        let result = try await withGRPCClient(transport: transport) { grpcClient in
          try await withGRPCClient(transport: intakeTransport) { intakeClient in
            try await body(
              RemediationHarness(
                app: app, client: Client(wrapping: grpcClient), intakeClient: Client(wrapping: intakeClient),
                webhooksClient: .init(wrapping: grpcClient), clock: clock, group: group, port: port
              )
            )
          }
        }
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

  /// The application's database for `database`, migrated.
  static func open(_ database: TestDatabase, logger: Logger) async throws -> RemediationDatabase {
    switch database {
    case .sqlite(let directory):
      return .sqlite(path: directory.url.appendingPathComponent("remediation.sqlite").path)
    case .postgres(let url):
      let settings = try PostgresSettings(url: url, password: nil)
      try await RemediationApplication.migrate(settings, logger: logger)
      return .postgres(settings)
    case .postgresAsIs(let url):
      return .postgres(try PostgresSettings(url: url, password: nil, connectTimeout: .seconds(2)))
    }
  }

  /// A handle acting as `person`.
  func desk(_ person: (name: String, token: String)) -> Desk {
    Desk(client: self.client, token: person.token)
  }

  /// A handle managing webhooks as `person`.
  func webhooks(_ person: (name: String, token: String)) -> WebhookDesk {
    WebhookDesk(client: self.webhooksClient, token: person.token)
  }

  /// A handle acting as intake: its client certificate, no token.
  var intake: Desk { Desk(client: self.intakeClient, token: nil) }

  /// Opens a remedy for a new incident as intake does.
  func open(_ incident: Redress_V1_Incident = Incidents.make()) async throws -> Redress_V1_Remedy {
    try await self.intake.open(incident).remedy
  }
}

/// Calls the service as one identity (bearer token, or the client's certificate when `token` is nil).
struct Desk: Sendable {
  let client: RemediationHarness.Client
  let token: String?

  var metadata: Metadata { self.token.map { ["authorization": "Bearer \($0)"] } ?? [:] }

  func open(_ incident: Redress_V1_Incident) async throws -> Redress_V1_OpenRemedyResponse {
    try await self.client.openRemedy(.with { $0.incident = incident }, metadata: self.metadata)
  }

  func get(_ id: String) async throws -> Redress_V1_Remedy {
    try await self.client.getRemedy(.with { $0.remedyID = id }, metadata: self.metadata)
  }

  func get(incidentID: String) async throws -> Redress_V1_Remedy {
    try await self.client.getRemedy(.with { $0.incidentID = incidentID }, metadata: self.metadata)
  }

  func list(_ request: Redress_V1_ListRemediesRequest = .init()) async throws -> Redress_V1_ListRemediesResponse {
    try await self.client.listRemedies(request, metadata: self.metadata)
  }

  /// Acts on `remedy` at its version.
  @discardableResult
  func act(_ remedy: Redress_V1_Remedy, _ action: Redress_V1_ActRequest.OneOf_Action) async throws -> Redress_V1_Remedy {
    try await self.act(remedy.id, version: remedy.version, action)
  }

  @discardableResult
  func act(_ id: String, version: Int64, _ action: Redress_V1_ActRequest.OneOf_Action) async throws -> Redress_V1_Remedy {
    try await self.client.act(
      .with {
        $0.remedyID = id
        $0.expectedVersion = version
        $0.action = action
      },
      metadata: self.metadata
    )
  }
}


/// Calls `redress.v1.Webhooks` as one identity.
struct WebhookDesk: Sendable {
  let client: Redress_V1_Webhooks.Client<WireClientTransport>
  let token: String

  var metadata: Metadata { ["authorization": "Bearer \(self.token)"] }

  func create(
    url: String, types: [Redress_V1_WebhookEventType] = [], clientView: Bool = false, description: String = ""
  ) async throws -> Redress_V1_CreateWebhookResponse {
    try await self.client.createWebhook(
      .with {
        $0.url = url
        $0.eventTypes = types
        $0.clientView = clientView
        $0.description_p = description
      }, metadata: self.metadata)
  }

  func list() async throws -> [Redress_V1_WebhookSubscription] {
    try await self.client.listWebhooks(.init(), metadata: self.metadata).webhooks
  }

  func delete(_ id: String) async throws -> Redress_V1_DeleteWebhookResponse {
    try await self.client.deleteWebhook(.with { $0.webhookID = id }, metadata: self.metadata)
  }

  func rotate(_ id: String, keepPreviousSeconds: Int64 = 0) async throws -> Redress_V1_CreateWebhookResponse {
    try await self.client.rotateWebhookSecret(
      .with {
        $0.webhookID = id
        $0.keepPreviousSeconds = keepPreviousSeconds
      }, metadata: self.metadata)
  }

  func test(_ id: String) async throws -> Redress_V1_TestWebhookResponse {
    try await self.client.testWebhook(.with { $0.webhookID = id }, metadata: self.metadata)
  }

  func deliveries(
    _ id: String, states: [Redress_V1_WebhookDeliveryState] = [], pageSize: Int32 = 0, pageToken: String = ""
  ) async throws -> Redress_V1_ListWebhookDeliveriesResponse {
    try await self.client.listWebhookDeliveries(
      .with {
        $0.webhookID = id
        $0.states = states
        $0.pageSize = pageSize
        $0.pageToken = pageToken
      }, metadata: self.metadata)
  }

  func replay(_ id: String, deliveries: [String] = []) async throws -> Int64 {
    try await self.client.replayWebhookDeliveries(
      .with {
        $0.webhookID = id
        $0.deliveryIds = deliveries
      }, metadata: self.metadata
    ).replayed
  }
}
