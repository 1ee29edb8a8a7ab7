public import ArgumentParser

/// The command-line options every Redress service takes. Each one can also come from the environment
/// (`REDRESS_<SERVICE>_<KEY>`, e.g. `REDRESS_INTAKE_PORT`) or a JSON file given with `--config`; flags win over
/// the environment, which wins over the file. See ``ServiceSettings``.
public struct ServerOptions: ParsableArguments, Sendable {
  @Option(name: .long, help: ArgumentHelp("JSON configuration file (keys as in docs/INTAKE.md / docs/REMEDIATION.md).", valueName: "path"))
  public var config: String?

  @Option(name: .long, help: "Address to listen on. [config: host; default: 127.0.0.1]")
  public var host: String?

  @Option(name: .long, help: "Port to listen on; 0 picks a free one. [config: port]")
  public var port: Int?

  @Option(name: .customLong("grpc-port"), help: "Also serve standard gRPC over HTTP/2 (for grpcio, grpc-go, grpcurl…) on this port, same host and TLS; 0 picks a free one. Off unless given. [config: grpc_port]")
  public var grpcPort: Int?

  @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics (GET /metrics over HTTPS, bearer token of an identity with the metrics role) on this port, same host; 0 picks a free one. Off unless given. [config: metrics_port]")
  public var metricsPort: Int?

  @Option(name: .customLong("otlp-endpoint"), help: ArgumentHelp("Export a trace span per RPC over OTLP/HTTP to this collector (e.g. http://otel-collector:4318); spans join a caller's W3C trace context. Off unless given. [config: tracing.otlp_endpoint]", valueName: "url"))
  public var otlpEndpoint: String?

  @Option(name: .customLong("data-dir"), help: ArgumentHelp("Directory for the service's SQLite database. [config: data_dir; default: ./redress-data]", valueName: "path"))
  public var dataDirectory: String?

  @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Server certificate chain, PEM. [config: tls.cert]", valueName: "path"))
  public var tlsCertificate: String?

  @Option(name: .customLong("tls-key"), help: ArgumentHelp("Server private key, PEM. [config: tls.key]", valueName: "path"))
  public var tlsKey: String?

  @Option(name: .customLong("tls-ca"), help: ArgumentHelp("CA certificate(s) client certificates must chain to, PEM. [config: tls.ca]", valueName: "path"))
  public var tlsCA: String?

  @Option(name: .customLong("identities"), help: ArgumentHelp("JSON file listing who may call: names, tenants, roles, certificate names, token SHA-256 digests. [config: identities]", valueName: "path"))
  public var identities: String?

  @Flag(name: .customLong("plaintext-for-testing-only"), help: "Serve without TLS. Never in production: no encryption and no client certificates. [config: plaintext_for_testing_only]")
  public var plaintextForTestingOnly = false

  @Option(name: .customLong("rate-per-second"), help: "Calls per second each identity may make on average; 0 disables rate limiting. [config: rate.per_second; default: 50]")
  public var ratePerSecond: Double?

  @Option(name: .customLong("rate-burst"), help: "Calls each identity may make back to back. [config: rate.burst; default: 100]")
  public var rateBurst: Int?

  @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. [config: log.level; default: info]")
  public var logLevel: String?

  @Option(name: .customLong("log-format"), help: "text, or json for one JSON object per line. [config: log.format; default: text]")
  public var logFormat: String?

  @Option(name: .customLong("database"), help: ArgumentHelp("PostgreSQL instead of the embedded SQLite: postgres://USER@HOST:PORT/DATABASE[?sslmode=verify-full|require|disable&sslrootcert=PATH] (no password in it). [config: database.url]", valueName: "url"))
  public var databaseURL: String?

  @Option(name: .customLong("database-password-file"), help: ArgumentHelp("File holding the database password (or the environment variable REDRESS_<SERVICE>_DATABASE_PASSWORD). [config: database.password_file]", valueName: "path"))
  public var databasePasswordFile: String?

  @Option(name: .customLong("database-max-connections"), help: "Connections in this replica's pool. [config: database.max_connections; default: 10]")
  public var databaseMaxConnections: Int?

  public init() {}

  /// The values given on the command line, by configuration key.
  var flagValues: [String: String] {
    var values: [String: String] = [:]
    values["host"] = self.host
    values["port"] = self.port.map(String.init)
    values["grpc_port"] = self.grpcPort.map(String.init)
    values["metrics_port"] = self.metricsPort.map(String.init)
    values["tracing.otlp_endpoint"] = self.otlpEndpoint
    values["data_dir"] = self.dataDirectory
    values["tls.cert"] = self.tlsCertificate
    values["tls.key"] = self.tlsKey
    values["tls.ca"] = self.tlsCA
    values["identities"] = self.identities
    values["plaintext_for_testing_only"] = self.plaintextForTestingOnly ? "true" : nil
    values["rate.per_second"] = self.ratePerSecond.map { String($0) }
    values["rate.burst"] = self.rateBurst.map(String.init)
    values["log.level"] = self.logLevel
    values["log.format"] = self.logFormat
    values["database.url"] = self.databaseURL
    values["database.password_file"] = self.databasePasswordFile
    values["database.max_connections"] = self.databaseMaxConnections.map(String.init)
    return values
  }
}
