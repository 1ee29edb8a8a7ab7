import Foundation
import GRPCCore
import Logging
import NIOSSL
import RedressClient
import RedressPKI
import RedressService
import RedressWire

/// Runs scripted services behind real `RedressServer`s (TLS, authentication) and a client pointed at them.
enum ClientTestHarness {
  static let token = "client-test-token"

  static let pki: (authority: CertificateAuthority, server: IssuedCertificate) = {
    do {
      let authority = try CertificateAuthority.create(commonName: "Client Test CA")
      let server = try authority.issue(
        commonName: "localhost",
        dnsNames: ["localhost"],
        ipAddresses: [[127, 0, 0, 1]],
        usage: .server
      )
      return (authority, server)
    } catch {
      fatalError("cannot mint test certificates: \(error)")
    }
  }()

  static func withServices<Result: Sendable>(
    intake: some RegistrableRPCService,
    remediation: some RegistrableRPCService,
    deadlines: DeadlineRecorder = DeadlineRecorder(),
    retry: RedressClient.Configuration.RetryPolicy = .init(
      maxAttempts: 4,
      initialBackoff: .milliseconds(10),
      maximumBackoff: .milliseconds(50),
      multiplier: 2
    ),
    _ body: @Sendable (RedressClient) async throws -> Result
  ) async throws -> Result {
    let directory = try IdentityDirectory(entries: [
      .init(
        name: "tool",
        tenant: "t1",
        // Every role a token may carry (service identities authenticate with certificates only).
        roles: Role.all.subtracting([.service]),
        tokenSHA256: [IdentityDirectory.digest(ofToken: Self.token)]
      )
    ])
    let security = ServerSecurity.tls(
      ServerTLS(
        certificateChain: [try NIOSSLCertificate(bytes: Self.pki.server.certificateDER(), format: .der)],
        privateKey: try NIOSSLPrivateKey(bytes: Self.pki.server.privateKeyDER(), format: .der)
      )
    )
    var logger = Logger(label: "client-tests")
    logger.logLevel = .critical
    let intakeServer = try RedressServer(
      config: .init(host: "127.0.0.1", port: 0, security: security),
      services: [intake],
      directory: directory,
      rateLimiter: nil,
      interceptors: [deadlines],
      logger: logger
    )
    let remediationServer = try RedressServer(
      config: .init(host: "127.0.0.1", port: 0, security: security),
      services: [remediation],
      directory: directory,
      rateLimiter: nil,
      logger: logger
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await intakeServer.run() }
      group.addTask { try await remediationServer.run() }
      defer {
        intakeServer.beginGracefulShutdown()
        remediationServer.beginGracefulShutdown()
      }
      let intakePort = try await intakeServer.listeningAddress.port ?? 0
      let remediationPort = try await remediationServer.listeningAddress.port ?? 0
      let configuration = RedressClient.Configuration(
        intake: .init(host: "127.0.0.1", port: intakePort),
        remediation: .init(host: "127.0.0.1", port: remediationPort),
        credentials: .init(token: Self.token),
        trustRootsPEM: try Self.pki.authority.root.certificatePEM(),
        retry: retry
      )
      return try await withRedressClient(configuration: configuration, logger: logger) { client in
        try await body(client)
      }
    }
  }
}
