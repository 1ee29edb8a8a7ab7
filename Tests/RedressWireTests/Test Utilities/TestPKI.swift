import Foundation
import NIOSSL
import RedressPKI
import X509

/// Certificates and keys minted in-process for TLS tests; nothing is read from or written to disk.
///
/// `TestPKI.shared` holds one CA with a server leaf (localhost, 127.0.0.1), a client leaf, an expired server
/// leaf, and an unrelated CA with its own server leaf for "unknown CA" cases. Use ``makeLeaf(commonName:dnsNames:ipAddresses:uris:usage:notValidBefore:notValidAfter:)``
/// for anything else.
struct TestPKI: Sendable {
  /// One key pair with its certificate, in both the NIOSSL form TLS configuration needs and the X509 form
  /// tests can inspect.
  struct Identity: Sendable {
    /// The certificate, for `TLSConfiguration` (certificate chain or trust roots).
    var certificate: NIOSSLCertificate
    /// The private key matching ``certificate``.
    var privateKey: NIOSSLPrivateKey
    /// The same certificate, parsed.
    var x509: Certificate
    /// The private key as swift-certificates sees it; an issuer signs with it.
    var signingKey: Certificate.PrivateKey

    /// The certificate in PEM, for configuration that takes text.
    var certificatePEM: String {
      get throws { try self.x509.serializeAsPEM().pemString }
    }

    /// The private key in PKCS#8 PEM.
    var privateKeyPEM: String {
      get throws { try self.signingKey.serializeAsPEM().pemString }
    }
  }

  /// What a leaf certificate may be used for; sets its extended key usage.
  enum Usage: Sendable {
    case server
    case client
    case serverAndClient
  }

  /// The CA that signs ``server``, ``client`` and ``expiredServer``.
  let ca: Identity
  /// A server leaf for DNS "localhost" and IP 127.0.0.1, signed by ``ca``.
  let server: Identity
  /// A client leaf for the intake service (CN "intake-service", URI SAN "spiffe://redress/intake"), signed by ``ca``.
  let client: Identity
  /// A server leaf like ``server`` whose validity ended a day ago, signed by ``ca``.
  let expiredServer: Identity
  /// A CA that nothing trusts.
  let unknownCA: Identity
  /// A server leaf for localhost and 127.0.0.1 signed by ``unknownCA``.
  let unknownCAServer: Identity

  /// The PKI most tests share; minting keys is cheap but there is no reason to do it per test.
  static let shared: TestPKI = {
    do {
      return try TestPKI()
    } catch {
      fatalError("Could not mint the test PKI: \(error)")
    }
  }()

  /// Mints a fresh PKI whose validity periods are relative to `now`.
  init(now: Date = Date()) throws {
    let day: TimeInterval = 24 * 60 * 60
    self.ca = try Self.makeCA(commonName: "Redress Test CA", now: now)
    self.server = try Self.makeLeaf(
      issuer: self.ca,
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: [[127, 0, 0, 1]],
      usage: .server,
      notValidBefore: now - 60 * 60,
      notValidAfter: now + day
    )
    self.client = try Self.makeLeaf(
      issuer: self.ca,
      commonName: "intake-service",
      dnsNames: ["intake-service"],
      uris: ["spiffe://redress/intake"],
      usage: .client,
      notValidBefore: now - 60 * 60,
      notValidAfter: now + day
    )
    self.expiredServer = try Self.makeLeaf(
      issuer: self.ca,
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: [[127, 0, 0, 1]],
      usage: .server,
      notValidBefore: now - 3 * day,
      notValidAfter: now - day
    )
    self.unknownCA = try Self.makeCA(commonName: "Unknown Test CA", now: now)
    self.unknownCAServer = try Self.makeLeaf(
      issuer: self.unknownCA,
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: [[127, 0, 0, 1]],
      usage: .server,
      notValidBefore: now - 60 * 60,
      notValidAfter: now + day
    )
  }

  /// Mints a leaf signed by ``ca``, valid from an hour ago for a day unless told otherwise.
  ///
  /// - Parameter ipAddresses: Each address as its raw octets: 4 for IPv4, 16 for IPv6.
  func makeLeaf(
    commonName: String,
    dnsNames: [String] = [],
    ipAddresses: [[UInt8]] = [],
    uris: [String] = [],
    usage: Usage = .serverAndClient,
    notValidBefore: Date = Date() - 60 * 60,
    notValidAfter: Date = Date() + 24 * 60 * 60
  ) throws -> Identity {
    try Self.makeLeaf(
      issuer: self.ca,
      commonName: commonName,
      dnsNames: dnsNames,
      ipAddresses: ipAddresses,
      uris: uris,
      usage: usage,
      notValidBefore: notValidBefore,
      notValidAfter: notValidAfter
    )
  }

  /// Mints a self-signed CA certificate with a new P-256 key, valid from a day before `now` for a year.
  static func makeCA(commonName: String, now: Date = Date()) throws -> Identity {
    let authority = try CertificateAuthority.create(
      commonName: commonName,
      organization: "Redress tests",
      now: now,
      validity: 365 * 24 * 60 * 60
    )
    return try Identity(authority.root)
  }

  /// Mints a leaf certificate with a new P-256 key, signed by `issuer`.
  ///
  /// - Parameter ipAddresses: Each address as its raw octets: 4 for IPv4, 16 for IPv6.
  static func makeLeaf(
    issuer: Identity,
    commonName: String,
    dnsNames: [String] = [],
    ipAddresses: [[UInt8]] = [],
    uris: [String] = [],
    usage: Usage,
    notValidBefore: Date,
    notValidAfter: Date
  ) throws -> Identity {
    let authority = CertificateAuthority(root: IssuedCertificate(certificate: issuer.x509, privateKey: issuer.signingKey))
    let leafUsage: CertificateAuthority.Usage =
      switch usage {
      case .server: .server
      case .client: .client
      case .serverAndClient: .serverAndClient
      }
    return try Identity(
      authority.issue(
        commonName: commonName,
        dnsNames: dnsNames,
        ipAddresses: ipAddresses,
        uris: uris,
        usage: leafUsage,
        notValidBefore: notValidBefore,
        notValidAfter: notValidAfter
      )
    )
  }
}

extension TestPKI.Identity {
  fileprivate init(_ issued: IssuedCertificate) throws {
    self.certificate = try NIOSSLCertificate(bytes: issued.certificateDER(), format: .der)
    self.privateKey = try NIOSSLPrivateKey(bytes: issued.privateKeyDER(), format: .der)
    self.x509 = issued.certificate
    self.signingKey = issued.privateKey
  }
}
