public import NIOSSL

/// TLS settings shared by the Redress wire transports (docs/PROTOCOL.md §2).
public enum WireTLS {
  /// The ALPN protocol id clients offer and servers select.
  public static let alpnIdentifier = "redress/1"

  /// The TLS 1.2 suites either side offers: ECDHE with an AEAD cipher only (no CBC, no SHA-1 MAC, no static
  /// RSA key exchange). TLS 1.3's suites are all AEAD and are not affected.
  public static let aeadCipherSuites: [NIOTLSCipher] = [
    .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
  ]
}

/// How a server secures its connections.
public enum ServerSecurity: Sendable {
  /// TLS 1.2 or later: the production setting.
  case tls(ServerTLS)
  /// No encryption and no authentication. Only for tests and local development; never the default.
  case plaintextForTestingOnly
}

/// How a client secures its connections.
public enum ClientSecurity: Sendable {
  /// TLS 1.2 or later: the production setting.
  case tls(ClientTLS)
  /// No encryption and no authentication. Only for tests and local development; never the default.
  case plaintextForTestingOnly
}

/// A server's certificate, key, and how it treats client certificates.
public struct ServerTLS: Sendable {
  /// Whether clients must present a certificate.
  public enum ClientCertificates: Sendable, Hashable {
    /// Clients are not asked for a certificate.
    case notRequested
    /// A certificate is verified against `trustRoots` if presented, but not required.
    case optional
    /// A certificate signed by `trustRoots` is required (mutual TLS).
    case required
  }

  /// The server's certificate chain, leaf first.
  public var certificateChain: [NIOSSLCertificate]
  /// The server's private key.
  public var privateKey: NIOSSLPrivateKey
  /// Client certificate policy; default `.notRequested`.
  public var clientCertificates: ClientCertificates
  /// The CAs client certificates must chain to; `nil` uses the system's roots.
  public var trustRoots: [NIOSSLCertificate]?
  /// The lowest TLS version accepted; never below 1.2.
  public var minimumVersion: TLSVersion

  /// Server TLS with the given identity; clients are not asked for certificates.
  public init(
    certificateChain: [NIOSSLCertificate],
    privateKey: NIOSSLPrivateKey,
    clientCertificates: ClientCertificates = .notRequested,
    trustRoots: [NIOSSLCertificate]? = nil,
    minimumVersion: TLSVersion = .tlsv12
  ) {
    self.certificateChain = certificateChain
    self.privateKey = privateKey
    self.clientCertificates = clientCertificates
    self.trustRoots = trustRoots
    self.minimumVersion = minimumVersion
  }

  func makeContext() throws -> NIOSSLContext {
    var configuration = TLSConfiguration.makeServerConfiguration(
      certificateChain: self.certificateChain.map { .certificate($0) },
      privateKey: .privateKey(self.privateKey)
    )
    configuration.minimumTLSVersion = Self.atLeastTLS12(self.minimumVersion)
    configuration.cipherSuiteValues = WireTLS.aeadCipherSuites
    configuration.applicationProtocols = [WireTLS.alpnIdentifier]
    switch self.clientCertificates {
    case .notRequested:
      configuration.certificateVerification = .none
    case .optional:
      configuration.certificateVerification = .optionalVerification
    case .required:
      configuration.certificateVerification = .noHostnameVerification
    }
    if let roots = self.trustRoots {
      configuration.trustRoots = .certificates(roots)
    }
    return try NIOSSLContext(configuration: configuration)
  }

  static func atLeastTLS12(_ version: TLSVersion) -> TLSVersion {
    switch version {
    case .tlsv1, .tlsv11: .tlsv12
    default: version
    }
  }
}

/// What a client trusts and how it identifies itself.
public struct ClientTLS: Sendable {
  /// The CAs the server's certificate must chain to; `nil` uses the system's roots.
  public var trustRoots: [NIOSSLCertificate]?
  /// The client's certificate chain for mutual TLS, leaf first; empty for none.
  public var certificateChain: [NIOSSLCertificate]
  /// The key of the client certificate.
  public var privateKey: NIOSSLPrivateKey?
  /// The name the server's certificate must carry; `nil` uses the target host.
  public var serverHostnameOverride: String?
  /// The lowest TLS version accepted; never below 1.2.
  public var minimumVersion: TLSVersion

  /// Client TLS trusting `trustRoots` (system roots if `nil`), with an optional client certificate.
  public init(
    trustRoots: [NIOSSLCertificate]? = nil,
    certificateChain: [NIOSSLCertificate] = [],
    privateKey: NIOSSLPrivateKey? = nil,
    serverHostnameOverride: String? = nil,
    minimumVersion: TLSVersion = .tlsv12
  ) {
    self.trustRoots = trustRoots
    self.certificateChain = certificateChain
    self.privateKey = privateKey
    self.serverHostnameOverride = serverHostnameOverride
    self.minimumVersion = minimumVersion
  }

  func makeContext() throws -> NIOSSLContext {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.minimumTLSVersion = ServerTLS.atLeastTLS12(self.minimumVersion)
    configuration.cipherSuiteValues = WireTLS.aeadCipherSuites
    configuration.applicationProtocols = [WireTLS.alpnIdentifier]
    configuration.certificateVerification = .fullVerification
    if let roots = self.trustRoots {
      configuration.trustRoots = .certificates(roots)
    }
    if let key = self.privateKey, !self.certificateChain.isEmpty {
      configuration.certificateChain = self.certificateChain.map { .certificate($0) }
      configuration.privateKey = .privateKey(key)
    }
    return try NIOSSLContext(configuration: configuration)
  }
}
