public import Foundation
public import Logging
public import PostgresNIO
import NIOSSL

/// Where a service's PostgreSQL database is and how to reach it: parsed from a `postgres://` URL, with the
/// password kept out of the URL (a file or the environment) so it never reaches a log line.
///
/// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=verify-full|require|disable&sslrootcert=PATH]`
///
/// TLS is on by default and verifies the server (`verify-full`, the system's trust roots or `sslrootcert`);
/// `require` encrypts without verifying the name; `disable` is for a database on the same host or in tests.
public struct PostgresSettings: Sendable, CustomStringConvertible {
  /// How the connection is protected.
  public enum TLSMode: String, Sendable {
    case verifyFull = "verify-full"
    case require
    case disable
  }

  public var host: String
  public var port: Int
  public var username: String
  public var database: String
  public var tlsMode: TLSMode
  /// PEM file of the CA that signs the server's certificate (`sslrootcert`); `nil`: the system's roots.
  public var rootCertificatePath: String?
  /// Never printed (``description`` leaves it out).
  public var password: String?
  /// The pool's size per replica.
  public var maxConnections: Int
  /// How long a query waits for a connection (and a connection attempt for the server) before failing as
  /// unavailable.
  public var connectTimeout: Duration

  /// Parses `url`; `password` comes from elsewhere (a password inside the URL is refused, so it cannot leak
  /// with the URL into logs, `ps` or shell history).
  public init(url: String, password: String?, maxConnections: Int = 10, connectTimeout: Duration = .seconds(5)) throws {
    guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
      throw ServiceSettings.SettingsError("the database URL must look like postgres://USER@HOST:PORT/DATABASE (got a different scheme or form)")
    }
    guard components.password == nil else {
      throw ServiceSettings.SettingsError(
        "the database URL must not hold a password: give it in database.password_file or the _DATABASE_PASSWORD environment variable"
      )
    }
    guard let host = components.host, !host.isEmpty else {
      throw ServiceSettings.SettingsError("the database URL needs a host: postgres://USER@HOST:PORT/DATABASE")
    }
    guard let user = components.user, !user.isEmpty else {
      throw ServiceSettings.SettingsError("the database URL needs a user: postgres://USER@HOST:PORT/DATABASE")
    }
    let database = String(components.path.drop(while: { $0 == "/" }))
    guard !database.isEmpty, !database.contains("/") else {
      throw ServiceSettings.SettingsError("the database URL needs a database name: postgres://USER@HOST:PORT/DATABASE")
    }
    guard (1...1_000).contains(maxConnections) else {
      throw ServiceSettings.SettingsError("database.max_connections must be 1-1000")
    }
    self.host = host
    self.port = components.port ?? 5432
    self.username = user
    self.database = database
    self.password = password
    self.maxConnections = maxConnections
    self.connectTimeout = connectTimeout
    self.tlsMode = .verifyFull
    for item in components.queryItems ?? [] {
      switch item.name {
      case "sslmode":
        guard let mode = TLSMode(rawValue: item.value ?? "") else {
          throw ServiceSettings.SettingsError("sslmode must be verify-full, require or disable (got '\(item.value ?? "")')")
        }
        self.tlsMode = mode
      case "sslrootcert":
        self.rootCertificatePath = item.value
      default:
        throw ServiceSettings.SettingsError("the database URL has an unknown parameter '\(item.name)' (known: sslmode, sslrootcert)")
      }
    }
  }

  /// `postgres://user@host:port/database?sslmode=…` — without the password.
  public var description: String {
    "postgres://\(self.username)@\(self.host):\(self.port)/\(self.database)?sslmode=\(self.tlsMode.rawValue)"
  }

  /// The client configuration postgres-nio's pool takes.
  public func clientConfiguration() throws -> PostgresClient.Configuration {
    let tls: PostgresClient.Configuration.TLS
    switch self.tlsMode {
    case .disable:
      tls = .disable
    case .require, .verifyFull:
      var configuration = TLSConfiguration.makeClientConfiguration()
      if self.tlsMode == .require { configuration.certificateVerification = .none }
      if let path = self.rootCertificatePath {
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
      }
      tls = .require(configuration)
    }
    var configuration = PostgresClient.Configuration(
      host: self.host, port: self.port, username: self.username, password: self.password, database: self.database, tls: tls
    )
    configuration.options.maximumConnections = self.maxConnections
    configuration.options.connectTimeout = self.connectTimeout
    return configuration
  }

  /// A pool for these settings; run it (it is a `Service`) before querying.
  public func makeClient(logger: Logger) throws -> PostgresClient {
    PostgresClient(configuration: try self.clientConfiguration(), backgroundLogger: logger)
  }

  /// Runs `body` with a pool of its own for these settings, running while `body` does and shut down after it
  /// (for one-off work such as migrations and imports, outside a service group).
  public func withClient<T: Sendable>(logger: Logger, _ body: (PostgresClient) async throws -> T) async throws -> T {
    let client = try self.makeClient(logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { await client.run() }
      defer { group.cancelAll() }
      return try await body(client)
    }
  }
}
