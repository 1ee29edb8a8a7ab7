import GRPCCore
import NIOCore
import NIOSSL
import RedressWire

/// TLS settings for the test server: the shared test PKI's server leaf, client certificates
/// verified if presented.
func testServerSecurity(
  _ clientCertificates: ServerTLS.ClientCertificates = .optional,
  identity: TestPKI.Identity = TestPKI.shared.server
) -> ServerSecurity {
  .tls(
    ServerTLS(
      certificateChain: [identity.certificate],
      privateKey: identity.privateKey,
      clientCertificates: clientCertificates,
      trustRoots: [TestPKI.shared.ca.certificate]
    )
  )
}

/// TLS settings for a test client trusting the test CA, with the client leaf unless told otherwise.
func testClientSecurity(
  identity: TestPKI.Identity? = TestPKI.shared.client,
  trusting roots: [NIOSSLCertificate] = [TestPKI.shared.ca.certificate],
  serverHostnameOverride: String? = nil
) -> ClientSecurity {
  .tls(
    ClientTLS(
      trustRoots: roots,
      certificateChain: identity.map { [$0.certificate] } ?? [],
      privateKey: identity?.privateKey,
      serverHostnameOverride: serverHostnameOverride
    )
  )
}

/// A running test server.
struct TestServer: Sendable {
  let transport: WireServerTransport
  let port: Int

  /// A client transport for this server.
  func makeClientTransport(
    security: ClientSecurity = testClientSecurity(),
    configure: (inout WireClientTransport.Config) -> Void = { _ in }
  ) throws -> WireClientTransport {
    var config = WireClientTransport.Config.defaults(security: security)
    config.backoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200), multiplier: 2, jitter: 0.1)
    configure(&config)
    return try WireClientTransport(host: "127.0.0.1", port: self.port, config: config)
  }

  /// Runs `body` with a client connected to this server, then shuts the client down.
  func withClient<T: Sendable>(
    security: ClientSecurity = testClientSecurity(),
    configure: (inout WireClientTransport.Config) -> Void = { _ in },
    _ body: (GRPCClient<WireClientTransport>) async throws -> T
  ) async throws -> T {
    let transport = try self.makeClientTransport(security: security, configure: configure)
    return try await withGRPCClient(transport: transport) { client in
      try await body(client)
    }
  }
}

/// Runs a GRPC server on the Redress wire at 127.0.0.1 on a free port while `body` runs.
func withWireServer<T: Sendable>(
  services: [any RegistrableRPCService],
  security: ServerSecurity = testServerSecurity(),
  interceptors: [any ServerInterceptor] = [],
  configure: (inout WireServerTransport.Config) -> Void = { _ in },
  _ body: (TestServer) async throws -> T
) async throws -> T {
  var config = WireServerTransport.Config.defaults(security: security)
  configure(&config)
  let transport = WireServerTransport(host: "127.0.0.1", port: 0, config: config)
  return try await withGRPCServer(transport: transport, services: services, interceptors: interceptors) { server in
    let address = try await transport.listeningAddress
    let server = TestServer(transport: transport, port: address.port!)
    return try await body(server)
  }
}
