import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOSSL
import RedressWire

/// The transports under comparison, configured with their defaults and the same certificates.
enum TransportKind: String, Sendable, CaseIterable {
  case redress = "Redress"
  case http2 = "HTTP/2"

  /// Runs the echo service on this transport at 127.0.0.1 on a free port while `body` runs with
  /// the port.
  func withServer<Result: Sendable>(
    pki: BenchPKI,
    _ body: @Sendable (Int) async throws -> Result
  ) async throws -> Result {
    switch self {
    case .redress:
      let security = ServerSecurity.tls(
        ServerTLS(certificateChain: [pki.serverCertificate], privateKey: pki.serverKey)
      )
      var config = WireServerTransport.Config.defaults(security: security)
      // Every client of a benchmark comes from 127.0.0.1, and the memory scenario holds thousands of idle
      // connections: the per-address and per-server caps (128 and 1,024 by default) would refuse them.
      config.limits.maxConnections = 100_000
      config.limits.maxConnectionsPerAddress = 100_000
      let transport = WireServerTransport(
        host: "127.0.0.1", port: 0, config: config, logger: quietLogger("redress.bench.server")
      )
      return try await withGRPCServer(transport: transport, services: [EchoService()]) { _ in
        let port = try await transport.listeningAddress.port!
        return try await body(port)
      }
    case .http2:
      let transport = HTTP2ServerTransport.Posix(
        address: .ipv4(host: "127.0.0.1", port: 0),
        transportSecurity: .tls(
          certificateChain: [.bytes(Array(pki.serverCertificatePEM.utf8), format: .pem)],
          privateKey: .bytes(Array(pki.serverKeyPEM.utf8), format: .pem)
        ),
        config: .defaults
      )
      return try await withGRPCServer(transport: transport, services: [EchoService()]) { _ in
        guard let port = try await transport.listeningAddress.ipv4?.port else {
          throw BenchError("The HTTP/2 server is not listening on IPv4.")
        }
        return try await body(port)
      }
    }
  }

  /// Runs `connections` clients of this transport to `port`, one connection each, while `body` runs.
  func withClients<Result: Sendable>(
    pki: BenchPKI,
    port: Int,
    connections: Int,
    _ body: @Sendable ([EchoClient]) async throws -> Result
  ) async throws -> Result {
    switch self {
    case .redress:
      let security = ClientSecurity.tls(ClientTLS(trustRoots: [pki.caCertificate]))
      let transports = try (0..<connections).map { _ in
        try WireClientTransport(
          host: "127.0.0.1", port: port, config: .defaults(security: security),
          logger: quietLogger("redress.bench.client")
        )
      }
      return try await withEchoClients(transports: transports, body)
    case .http2:
      let caPEM = pki.caPEM
      let transports = try (0..<connections).map { _ in
        try HTTP2ClientTransport.Posix(
          target: .ipv4(address: "127.0.0.1", port: port),
          transportSecurity: .tls { tls in
            tls.trustRoots = .certificates([.bytes(Array(caPEM.utf8), format: .pem)])
          },
          config: .defaults
        )
      }
      return try await withEchoClients(transports: transports, body)
    }
  }
}

/// A benchmark that could not run, with what went wrong.
struct BenchError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// A logger that reports only warnings and worse, so standard output holds the table (and the idle
/// server's port line) alone.
func quietLogger(_ label: String) -> Logger {
  var logger = Logger(label: label)
  logger.logLevel = .warning
  return logger
}
