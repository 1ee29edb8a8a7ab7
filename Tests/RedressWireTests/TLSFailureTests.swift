import GRPCCore
import Logging
import NIOCore
import NIOSSL
import RedressWire
import Synchronization
import Testing
import RedressTestSupport

/// TLS set-ups that must fail, each with an error on the client that says what went wrong and a
/// log record on the server naming the failure; and mutual TLS that must succeed and identify the
/// client to the server's handlers.
@Suite("TLS failures")
struct TLSFailureTests {
  @Test("a server certificate from an unknown CA fails the RPC as unavailable, naming the certificate")
  func unknownCA() async throws {
    try await withLoggedServer(security: testServerSecurity(identity: TestPKI.shared.unknownCAServer)) { server, logs in
      let error = try await rpcError(server, security: testClientSecurity())
      expectUnavailable(error, naming: ["CERTIFICATE_VERIFY_FAILED"])
      try await expectServerLogged(logs, naming: ["TLS handshake failed", "UNKNOWN_CA"])
    }
  }

  @Test("a server certificate for another name fails the RPC as unavailable, naming the host name")
  func wrongServerName() async throws {
    // NIOSSL accepts an IP SAN matching the connected address whatever name was expected, so
    // this server's certificate names only "localhost" for the name check to decide.
    let localhostOnly = try TestPKI.shared.makeLeaf(commonName: "localhost", dnsNames: ["localhost"], usage: .server)
    try await withLoggedServer(security: testServerSecurity(identity: localhostOnly)) { server, logs in
      let error = try await rpcError(server, security: testClientSecurity(serverHostnameOverride: "wrong.example"))
      expectUnavailable(error, naming: ["Couldn't find wrong.example in certificate"])
      // The client checks the name after the TLS handshake and just closes; the server can only
      // tell that the connection ended before the Redress handshake.
      try await expectServerLogged(logs, naming: ["closed by the peer before the handshake completed"])

      // The same certificate passes for the name it carries, so the name is what failed above.
      try await server.withClient(security: testClientSecurity(serverHostnameOverride: "localhost")) { client in
        let stub = Grpc_Testing_TestService.Client(wrapping: client)
        let response = try await withTimeout(.seconds(5), "an RPC expecting 'localhost'") {
          try await stub.emptyCall(Grpc_Testing_Empty())
        }
        #expect(response == Grpc_Testing_Empty())
      }
    }
  }

  @Test("an expired server certificate fails the RPC as unavailable, naming the certificate")
  func expiredServerCertificate() async throws {
    try await withLoggedServer(security: testServerSecurity(identity: TestPKI.shared.expiredServer)) { server, logs in
      let error = try await rpcError(server, security: testClientSecurity())
      // BoringSSL's error says only that verification failed; the reason travels to the server
      // in the client's alert.
      expectUnavailable(error, naming: ["CERTIFICATE_VERIFY_FAILED"])
      try await expectServerLogged(logs, naming: ["TLS handshake failed", "CERTIFICATE_EXPIRED"])
    }
  }

  @Test("a client without a certificate where one is required fails as unavailable on both sides")
  func missingClientCertificate() async throws {
    try await withLoggedServer(security: testServerSecurity(.required)) { server, logs in
      let error = try await rpcError(server, security: testClientSecurity(identity: nil))
      expectUnavailable(error, naming: ["CERTIFICATE_REQUIRED"])
      try await expectServerLogged(logs, naming: ["TLS handshake failed", "PEER_DID_NOT_RETURN_A_CERTIFICATE"])
    }
  }

  @Test("a client certificate where one is required identifies the client to handlers")
  func requiredClientCertificate() async throws {
    let recorder = PeerIdentityRecorder()
    try await withWireServer(
      services: [InteropTestService()],
      security: testServerSecurity(.required),
      interceptors: [recorder]
    ) { server in
      try await server.withClient(security: testClientSecurity(identity: TestPKI.shared.client)) { client in
        let stub = Grpc_Testing_TestService.Client(wrapping: client)
        let response = try await withTimeout(.seconds(5), "an RPC with a client certificate") {
          try await stub.emptyCall(Grpc_Testing_Empty())
        }
        #expect(response == Grpc_Testing_Empty())
      }
    }
    let seen = recorder.identities
    try #require(seen.count == 1, "the handler ran \(seen.count) times")
    let identity = try #require(seen[0], "the handler's context has no peer identity")
    #expect(identity.subject.contains("intake-service"), "subject is '\(identity.subject)'")
    #expect(identity.subjectAlternativeNames.contains("spiffe://redress/intake"), "SANs are \(identity.subjectAlternativeNames)")
  }

  @Test("a TLS client against a plaintext server fails as unavailable, naming TLS")
  func tlsClientPlaintextServer() async throws {
    try await withLoggedServer(security: .plaintextForTestingOnly) { server, logs in
      let error = try await rpcError(server, security: testClientSecurity())
      expectUnavailable(error, naming: ["TLS handshake failed"])
      try await expectServerLogged(logs, naming: ["PROTOCOL_ERROR", "preface is not 'RDRS"])
    }
  }

  @Test(
    "a client offering at most TLS 1.1 is refused, even by a server configured to accept 1.0",
    arguments: [TLSVersion.tlsv12, .tlsv1]
  )
  func tls11Refused(serverMinimum: TLSVersion) async throws {
    let security = ServerSecurity.tls(
      ServerTLS(
        certificateChain: [TestPKI.shared.server.certificate],
        privateKey: TestPKI.shared.server.privateKey,
        minimumVersion: serverMinimum
      )
    )
    try await withLoggedServer(security: security) { server, logs in
      try await RawWireClient.withConnection(
        port: server.port,
        configureTLS: {
          $0.minimumTLSVersion = .tlsv1
          $0.maximumTLSVersion = .tlsv11
        }
      ) { raw in
        var failures: [any Error] = []
        var elements: [FrameParser.Element] = []
        closing: while true {
          switch try await raw.nextEvent() {
          case .element(let element): elements.append(element)
          case .undecodable(let error): failures.append(error)
          case .failed(let error): failures.append(error)
          case .closed: break closing
          }
        }
        #expect(elements.isEmpty, "the server answered a TLS 1.1 client with \(elements)")
        let described = failures.map { "\($0)" }.joined(separator: "; ")
        #expect(failures.contains { $0 is NIOSSLError }, "the client saw no TLS failure, only: \(described)")
      }
      try await expectServerLogged(logs, naming: ["TLS handshake failed", "UNSUPPORTED_PROTOCOL"])
    }
  }

  @Test("a TLS 1.2 client offering only CBC-SHA1 suites is refused; an AEAD suite is accepted (issue 11, finding 11)")
  func cbcSuitesRefused() async throws {
    try await withLoggedServer(security: testServerSecurity()) { server, logs in
      _ = try await RawWireClient.withConnection(
        port: server.port,
        configureTLS: {
          $0.maximumTLSVersion = .tlsv12
          $0.cipherSuiteValues = [.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]
        }
      ) { raw in
        await #expect(throws: (any Error).self, "the server completed a handshake on a CBC-SHA1 suite") {
          _ = try await raw.handshake()
        }
      }
      try await expectServerLogged(logs, naming: ["TLS handshake failed"])
      try await RawWireClient.withConnection(
        port: server.port,
        configureTLS: {
          $0.maximumTLSVersion = .tlsv12
          $0.cipherSuiteValues = [.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
        }
      ) { raw in
        _ = try await raw.handshake()
        #expect(try await raw.emptyCall(stream: 1).status?.code == .ok)
      }
    }
  }
}

// MARK: - Helpers

/// Runs a server whose transport logs into a fresh ``CapturedLogs``.
private func withLoggedServer<T: Sendable>(
  security: ServerSecurity,
  _ body: (TestServer, CapturedLogs) async throws -> T
) async throws -> T {
  let logs = CapturedLogs()
  let transport = WireServerTransport(
    host: "127.0.0.1",
    port: 0,
    config: .defaults(security: security),
    logger: logs.logger(label: "redress.wire.server.test")
  )
  return try await withGRPCServer(transport: transport, services: [InteropTestService()]) { _ in
    let address = try await transport.listeningAddress
    return try await body(TestServer(transport: transport, port: try #require(address.port)), logs)
  }
}

/// The error an EmptyCall to `server` fails with; records an issue if it does not fail with an
/// `RPCError`.
private func rpcError(
  _ server: TestServer,
  security: ClientSecurity,
  sourceLocation: SourceLocation = #_sourceLocation
) async throws -> RPCError {
  try await server.withClient(security: security) { client in
    let stub = Grpc_Testing_TestService.Client(wrapping: client)
    let outcome = try await withTimeout(.seconds(5), "the RPC to fail") {
      do {
        _ = try await stub.emptyCall(Grpc_Testing_Empty())
        return Result<Void, any Error>.success(())
      } catch {
        return Result<Void, any Error>.failure(error)
      }
    }
    switch outcome {
    case .success:
      Issue.record("the RPC succeeded", sourceLocation: sourceLocation)
      throw RawWireClient.Failure(description: "the RPC succeeded")
    case .failure(let error as RPCError):
      return error
    case .failure(let error):
      Issue.record("the RPC failed with \(type(of: error)), not an RPCError: \(error)", sourceLocation: sourceLocation)
      throw error
    }
  }
}

/// Expects `error` to be `unavailable` with a message saying TLS failed and naming one of `words`
/// (compared case-insensitively).
private func expectUnavailable(_ error: RPCError, naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(error.code == .unavailable, "\(error)", sourceLocation: sourceLocation)
  let message = error.message.lowercased()
  #expect(message.contains("tls error") || message.contains("tls handshake failed"), "the message does not say TLS failed: '\(error.message)'", sourceLocation: sourceLocation)
  #expect(
    words.contains { message.contains($0.lowercased()) },
    "the message names none of \(words): '\(error.message)'",
    sourceLocation: sourceLocation
  )
}

/// Waits (at most 5 s) for a server log record at `info` or above whose text contains every one of `words`.
private func expectServerLogged(_ logs: CapturedLogs, naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
  do {
    let record = try await withTimeout(.seconds(5), "a server log record naming \(words)") {
      try await logs.first { record in
        record.level >= .info && words.allSatisfy { record.text.lowercased().contains($0.lowercased()) }
      }
    }
    #expect(record.metadata["peer"] != nil, "the record does not name the peer: \(record)", sourceLocation: sourceLocation)
  } catch let error as TimedOut {
    Issue.record("\(error); the server logged: \(logs.records)", sourceLocation: sourceLocation)
  }
}

/// Records the peer identity each handler's context carries.
private final class PeerIdentityRecorder: ServerInterceptor, Sendable {
  private let seen = Mutex<[PeerIdentity?]>([])

  var identities: [PeerIdentity?] { self.seen.withLock { $0 } }

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    self.seen.withLock { $0.append(context.peerIdentity) }
    return try await next(request, context)
  }
}
