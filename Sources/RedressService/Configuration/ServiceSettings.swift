public import Configuration
public import Foundation
public import Logging
public import RedressWire
import NIOSSL
import RedressSchemas

/// Everything a Redress service needs to start, resolved from flags, then the environment
/// (`REDRESS_<SERVICE>_<KEY>`), then the JSON file given with `--config`.
///
/// Service-specific keys are read through ``SettingsReader`` so that a malformed value is an error naming
/// the key, never a silent fallback to the default.
public struct ServiceSettings: Sendable {
  /// A configuration problem; the message names the key and says what is allowed.
  public struct SettingsError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
  }

  /// Address to listen on.
  public var host: String
  /// Port to listen on (0: any free port).
  public var port: Int
  /// Standard gRPC over HTTP/2 on the same host, when `grpc_port` is set.
  public var grpcHTTP2: GRPCHTTP2Listener?
  /// `GET /metrics` over HTTPS on the same host, when `metrics_port` is set.
  public var metrics: MetricsListener?
  /// The OTLP/HTTP collector spans are exported to, when `tracing.otlp_endpoint` is set (``ServiceTracing``).
  public var otlpEndpoint: String?
  /// Where the service keeps its SQLite database.
  public var dataDirectory: URL
  /// TLS, or plaintext when explicitly asked for tests.
  public var security: ServerSecurity
  /// Who may call.
  public var directory: IdentityDirectory
  /// `nil` when rate limiting is off.
  public var rateLimit: RateLimiter.Config?
  /// The lowest level logged.
  public var logLevel: Logger.Level
  /// Text (the default) or JSON lines.
  public var logFormat: LogFormat
  /// For the service's own keys.
  public var reader: SettingsReader
  /// PostgreSQL when `database.url` is set; `nil`: the embedded SQLite in ``dataDirectory``.
  public var postgres: PostgresSettings?

  /// Resolves the shared settings and prepares ``reader`` for the service's own.
  ///
  /// - Parameters:
  ///   - options: The parsed shared flags.
  ///   - extraFlags: The service's own flags that were given, by configuration key (`"outbox.max_backoff_ms": "30000"`).
  ///   - service: The service's short name (`intake`), used for the environment prefix.
  ///   - defaultPort: The port when none is configured.
  public static func load(
    options: ServerOptions,
    extraFlags: [String: String] = [:],
    service: String,
    defaultPort: Int
  ) async throws -> ServiceSettings {
    let reader = try await SettingsReader.make(
      flags: options.flagValues.merging(extraFlags) { shared, _ in shared },
      configFile: options.config,
      service: service
    )
    let host = try reader.string("host") ?? "127.0.0.1"
    let port = try reader.int("port") ?? defaultPort
    guard (0...65535).contains(port) else {
      throw SettingsError("port must be between 0 and 65535, not \(port)")
    }
    var grpcHTTP2: GRPCHTTP2Listener?
    if let grpcPort = try reader.int("grpc_port") {
      guard (0...65535).contains(grpcPort) else {
        throw SettingsError("grpc_port must be between 0 and 65535, not \(grpcPort)")
      }
      guard grpcPort == 0 || grpcPort != port else {
        throw SettingsError("grpc_port must differ from port (\(port)): the Redress wire and gRPC over HTTP/2 each need their own")
      }
      grpcHTTP2 = GRPCHTTP2Listener(host: host, port: grpcPort)
    }
    var metrics: MetricsListener?
    if let metricsPort = try reader.int("metrics_port") {
      guard (0...65535).contains(metricsPort) else {
        throw SettingsError("metrics_port must be between 0 and 65535, not \(metricsPort)")
      }
      guard metricsPort == 0 || (metricsPort != port && metricsPort != grpcHTTP2?.port) else {
        throw SettingsError("metrics_port must differ from port and grpc_port: each listener needs its own")
      }
      metrics = MetricsListener(host: host, port: metricsPort)
    }
    let dataDirectory = URL(fileURLWithPath: try reader.string("data_dir") ?? "redress-data", isDirectory: true)
    let otlpEndpoint = try reader.string("tracing.otlp_endpoint")
    if let otlpEndpoint {
      guard let url = URL(string: otlpEndpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
        throw SettingsError("tracing.otlp_endpoint must be an http:// or https:// URL of an OTLP/HTTP collector, like http://otel-collector:4318")
      }
    }

    let security: ServerSecurity
    if try reader.bool("plaintext_for_testing_only") ?? false {
      security = .plaintextForTestingOnly
    } else {
      guard let cert = try reader.string("tls.cert"), let key = try reader.string("tls.key"),
        let ca = try reader.string("tls.ca")
      else {
        throw SettingsError(
          "TLS needs tls.cert, tls.key and tls.ca (--tls-cert, --tls-key, --tls-ca; `redress certs` makes them), "
            + "or --plaintext-for-testing-only for a local test"
        )
      }
      security = .tls(try Self.loadTLS(certificatePath: cert, keyPath: key, caPath: ca))
    }

    guard let identitiesPath = try reader.string("identities") else {
      throw SettingsError("identities is required: a JSON file of who may call (--identities; see docs/INTAKE.md)")
    }
    let directory = try IdentityDirectory(contentsOf: URL(fileURLWithPath: identitiesPath))

    let rate = try reader.double("rate.per_second") ?? RateLimiter.Config.defaults.ratePerSecond
    let burst = try reader.int("rate.burst") ?? RateLimiter.Config.defaults.burst
    guard rate >= 0, burst > 0 else {
      throw SettingsError("rate.per_second must be ≥ 0 (0 turns limiting off) and rate.burst > 0")
    }
    var postgres: PostgresSettings?
    if let url = try reader.string("database.url") {
      // The password never comes from a flag or the URL: a file (mode 0600 in production) or the environment.
      var password = try reader.string("database.password")
      if let file = try reader.string("database.password_file") {
        do {
          password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
        } catch {
          throw SettingsError("database.password_file \(file) cannot be read: \(error.localizedDescription)")
        }
      }
      postgres = try PostgresSettings(
        url: url, password: password, maxConnections: try reader.int("database.max_connections") ?? 10)
    }
    let levelName = try reader.string("log.level") ?? "info"
    guard let level = Logger.Level(rawValue: levelName) else {
      throw SettingsError("log.level must be one of trace, debug, info, notice, warning, error, critical; not '\(levelName)'")
    }
    let formatName = try reader.string("log.format") ?? "text"
    guard let format = LogFormat(rawValue: formatName) else {
      throw SettingsError("log.format must be text or json, not '\(formatName)'")
    }
    return ServiceSettings(
      host: host,
      port: port,
      grpcHTTP2: grpcHTTP2,
      metrics: metrics,
      otlpEndpoint: otlpEndpoint,
      dataDirectory: dataDirectory,
      security: security,
      directory: directory,
      rateLimit: rate == 0 ? nil : RateLimiter.Config(ratePerSecond: rate, burst: burst),
      logLevel: level,
      logFormat: format,
      reader: reader,
      postgres: postgres
    )
  }

  /// Server TLS from PEM files. Client certificates are optional and, when presented, must chain to the CA:
  /// services authenticate with certificates (mutual TLS), people's tools may use bearer tokens instead.
  public static func loadTLS(certificatePath: String, keyPath: String, caPath: String) throws -> ServerTLS {
    do {
      let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
      let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
      let roots = try NIOSSLCertificate.fromPEMFile(caPath)
      return ServerTLS(certificateChain: chain, privateKey: key, clientCertificates: .optional, trustRoots: roots)
    } catch {
      throw SettingsError("cannot load TLS files (cert \(certificatePath), key \(keyPath), ca \(caPath)): \(error)")
    }
  }
}

/// Reads configuration keys from flags, then `REDRESS_<SERVICE>_<KEY>` environment variables, then the JSON
/// file. A value that is present but malformed throws, naming the key.
public struct SettingsReader: Sendable {
  /// The underlying swift-configuration reader (flags, environment, file).
  public let config: ConfigReader

  static func make(flags: [String: String], configFile: String?, service: String) async throws -> SettingsReader {
    // Flags go through the environment provider's string parsing, so "30" reads as an Int and "true" as a Bool
    // exactly as an environment variable would.
    let flagProvider = EnvironmentVariablesProvider(
      environmentVariables: Dictionary(uniqueKeysWithValues: flags.map { (Self.environmentName(for: $0.key), $0.value) })
    )
    var providers: [any ConfigProvider] = [
      flagProvider,
      EnvironmentVariablesProvider().prefixKeys(with: ConfigKey(["redress", service])),
    ]
    if let configFile {
      guard FileManager.default.fileExists(atPath: configFile) else {
        throw ServiceSettings.SettingsError("configuration file \(configFile) does not exist")
      }
      let fileLocation = InMemoryProvider(values: ["filePath": ConfigValue(.string(configFile), isSecret: false)])
      do {
        providers.append(try await FileProvider<JSONSnapshot>(config: ConfigReader(provider: fileLocation)))
      } catch {
        throw ServiceSettings.SettingsError("configuration file \(configFile) is not valid JSON: \(error)")
      }
    }
    return SettingsReader(config: ConfigReader(providers: providers))
  }

  /// Builds a reader over explicit values only (tests, embedding).
  public static func inMemory(_ values: [String: String]) async throws -> SettingsReader {
    try await Self.make(flags: values, configFile: nil, service: "unused")
  }

  static func environmentName(for key: String) -> String {
    key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined()
  }

  /// The string at `key`, `nil` if absent.
  public func string(_ key: String) throws -> String? {
    try self.read(key, "a string") { try self.config.requiredString(forKey: ConfigKey(key)) }
  }

  /// The integer at `key`, `nil` if absent; throws if present but not an integer.
  public func int(_ key: String) throws -> Int? {
    try self.read(key, "an integer") { try self.config.requiredInt(forKey: ConfigKey(key)) }
  }

  /// The number at `key`, `nil` if absent; throws if present but not a number.
  public func double(_ key: String) throws -> Double? {
    try self.read(key, "a number") { try self.config.requiredDouble(forKey: ConfigKey(key)) }
  }

  /// The Boolean at `key`, `nil` if absent; throws if present but not true/false.
  public func bool(_ key: String) throws -> Bool? {
    try self.read(key, "true or false") { try self.config.requiredBool(forKey: ConfigKey(key)) }
  }

  /// Amounts per currency at `key`, written `USD=50000,JPY=75000` (ISO 4217 codes, minor units, 0 to
  /// `Money.maxAmountMinor`); `nil` if absent.
  public func currencyAmounts(_ key: String) throws -> [String: Int64]? {
    guard let text = try self.string(key) else { return nil }
    var amounts: [String: Int64] = [:]
    for part in text.split(separator: ",") {
      let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard pair.count == 2, Redress_V1_Money.isCurrencyCode(pair[0]), let amount = Int64(pair[1]),
        amount >= 0, amount <= Redress_V1_Money.maxAmountMinor
      else {
        throw ServiceSettings.SettingsError(
          "\(key) must be CURRENCY=AMOUNT_IN_MINOR_UNITS pairs separated by commas, e.g. USD=50000,JPY=75000 "
            + "(ISO 4217 codes; amounts 0 to \(Redress_V1_Money.maxAmountMinor))"
        )
      }
      amounts[pair[0]] = amount
    }
    return amounts
  }

  private func read<Value>(_ key: String, _ expected: String, _ body: () throws -> Value) throws -> Value? {
    do {
      return try body()
    } catch {
      // swift-configuration's error type is package-scoped, so tell "missing" from "malformed" by asking
      // whether the key holds anything at all.
      let configKey = ConfigKey(key)
      let present =
        self.config.string(forKey: configKey) != nil || self.config.int(forKey: configKey) != nil
        || self.config.double(forKey: configKey) != nil || self.config.bool(forKey: configKey) != nil
      guard present else { return nil }
      throw ServiceSettings.SettingsError("\(key) must be \(expected)")
    }
  }
}
