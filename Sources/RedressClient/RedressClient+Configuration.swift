import Foundation
import RedressWire
import NIOSSL

extension RedressClient {
  /// Where the services are, who the client is, and how it retries.
  public struct Configuration: Sendable {
    /// A service address.
    public struct Endpoint: Sendable, Hashable {
      /// Host name or IP address.
      public var host: String
      /// TCP port.
      public var port: Int

      /// The service at `host:port`.
      public init(host: String, port: Int) {
        self.host = host
        self.port = port
      }

      /// Parses `host:port`.
      public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
          (1...65535).contains(port), colon != text.startIndex
        else { return nil }
        self.host = String(text[..<colon])
        self.port = port
      }
    }

    /// How the client proves who it is. Either or both: a certificate for mutual TLS, a bearer token.
    public struct Credentials: Sendable {
      /// Client certificate chain (leaf first) and its key, PEM text.
      public var certificatePEM: String?
      /// The certificate's private key, PEM text.
      public var privateKeyPEM: String?
      /// A bearer token sent as `authorization: Bearer <token>` on every call.
      public var token: String?

      /// Credentials from a certificate and key (PEM), a token, or both.
      public init(certificatePEM: String? = nil, privateKeyPEM: String? = nil, token: String? = nil) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.token = token
      }
    }

    /// Retries for calls that are safe to repeat (reads, and submits thanks to their idempotency key).
    public struct RetryPolicy: Sendable, Hashable {
      /// Attempts in all, the first included; 1 disables retries.
      public var maxAttempts: Int
      /// The delay before the first retry (before jitter).
      public var initialBackoff: Duration
      /// The longest delay between retries.
      public var maximumBackoff: Duration
      /// How much the delay grows after each retry.
      public var multiplier: Double

      /// A retry policy; see ``defaults``.
      public init(maxAttempts: Int, initialBackoff: Duration, maximumBackoff: Duration, multiplier: Double) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.multiplier = multiplier
      }

      /// 5 attempts, 100 ms doubling to at most 5 s, with full jitter; a server's retry-after wins when longer.
      public static var defaults: Self {
        Self(maxAttempts: 5, initialBackoff: .milliseconds(100), maximumBackoff: .seconds(5), multiplier: 2)
      }
    }

    /// The intake service.
    public var intake: Endpoint
    /// The remediation service.
    public var remediation: Endpoint
    /// Who the client is.
    public var credentials: Credentials
    /// PEM of the CA(s) the services' certificates chain to; `nil` trusts the system's roots.
    public var trustRootsPEM: String?
    /// The name the services' certificates must carry when it differs from the host dialled.
    public var serverHostnameOverride: String?
    /// The deadline of every call that does not set its own. Watches have none.
    public var defaultTimeout: Duration
    /// How calls that are safe to repeat are retried.
    public var retry: RetryPolicy
    /// No TLS at all. Only for tests against a service started with `--plaintext-for-testing-only`.
    public var plaintextForTestingOnly: Bool

    /// A configuration with the defaults: 10 s deadlines and ``RetryPolicy/defaults``.
    public init(
      intake: Endpoint,
      remediation: Endpoint,
      credentials: Credentials,
      trustRootsPEM: String?,
      serverHostnameOverride: String? = nil,
      defaultTimeout: Duration = .seconds(10),
      retry: RetryPolicy = .defaults,
      plaintextForTestingOnly: Bool = false
    ) {
      self.intake = intake
      self.remediation = remediation
      self.credentials = credentials
      self.trustRootsPEM = trustRootsPEM
      self.serverHostnameOverride = serverHostnameOverride
      self.defaultTimeout = defaultTimeout
      self.retry = retry
      self.plaintextForTestingOnly = plaintextForTestingOnly
    }

    func clientSecurity() throws -> ClientSecurity {
      if self.plaintextForTestingOnly {
        return .plaintextForTestingOnly
      }
      let roots = try self.trustRootsPEM.map { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
      var chain: [NIOSSLCertificate] = []
      var key: NIOSSLPrivateKey?
      if let certificatePEM = self.credentials.certificatePEM, let keyPEM = self.credentials.privateKeyPEM {
        chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
        key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
      }
      return .tls(
        ClientTLS(
          trustRoots: roots,
          certificateChain: chain,
          privateKey: key,
          serverHostnameOverride: self.serverHostnameOverride
        )
      )
    }
  }
}
