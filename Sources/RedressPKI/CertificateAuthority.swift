public import Foundation
import X509
import Crypto
import SwiftASN1

/// A certificate authority minted in-process with swift-certificates: a self-signed P-256 CA that issues
/// server and client leaves for the Redress services, the CLI's `redress dev` / `redress certs`, and tests.
///
/// Nothing here shells out to openssl; certificates and keys come back as values and as PEM.
public struct CertificateAuthority: Sendable {
  /// What a leaf certificate may be used for; sets its extended key usage.
  public enum Usage: Sendable {
    case server
    case client
    case serverAndClient
  }

  /// The CA's own certificate and signing key.
  public let root: IssuedCertificate

  /// Wraps an existing CA certificate and key, e.g. one read back from disk with ``IssuedCertificate/init(certificatePEM:privateKeyPEM:)``.
  public init(root: IssuedCertificate) {
    self.root = root
  }

  /// Mints a new self-signed CA with a fresh P-256 key.
  ///
  /// - Parameters:
  ///   - commonName: The CA's subject common name.
  ///   - organization: The subject organization.
  ///   - notValidBefore: Start of validity; defaults to a day before now so clock skew does not bite.
  ///   - validity: How long the CA is valid for, from now.
  public static func create(
    commonName: String,
    organization: String = "Redress",
    now: Date = Date(),
    validity: TimeInterval = 10 * 365 * 24 * 60 * 60
  ) throws -> CertificateAuthority {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let name = try DistinguishedName {
      OrganizationName(organization)
      CommonName(commonName)
    }
    let extensions = try Certificate.Extensions {
      Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
      Critical(KeyUsage(keyCertSign: true, cRLSign: true))
      SubjectKeyIdentifier(hash: key.publicKey)
    }
    let certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: key.publicKey,
      notValidBefore: now - 24 * 60 * 60,
      notValidAfter: now + validity,
      issuer: name,
      subject: name,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: extensions,
      issuerPrivateKey: key
    )
    return CertificateAuthority(root: IssuedCertificate(certificate: certificate, privateKey: key))
  }

  /// Issues a leaf certificate with a fresh P-256 key.
  ///
  /// - Parameters:
  ///   - commonName: The subject common name. Redress maps a client certificate to an identity by it.
  ///   - dnsNames: DNS subject alternative names.
  ///   - ipAddresses: IP subject alternative names, each as raw octets (4 for IPv4, 16 for IPv6).
  ///   - uris: URI subject alternative names, e.g. `spiffe://redress/intake`.
  ///   - usage: Server, client or both; sets the extended key usage.
  ///   - notValidBefore: Start of validity; defaults to an hour ago.
  ///   - notValidAfter: End of validity; defaults to a year from now.
  public func issue(
    commonName: String,
    dnsNames: [String] = [],
    ipAddresses: [[UInt8]] = [],
    uris: [String] = [],
    usage: Usage,
    notValidBefore: Date = Date() - 60 * 60,
    notValidAfter: Date = Date() + 365 * 24 * 60 * 60
  ) throws -> IssuedCertificate {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let subject = try DistinguishedName {
      OrganizationName(self.organization)
      CommonName(commonName)
    }
    let names: [GeneralName] =
      dnsNames.map { .dnsName($0) }
      + ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
      + uris.map { .uniformResourceIdentifier($0) }
    let keyUsages: [ExtendedKeyUsage.Usage] =
      switch usage {
      case .server: [.serverAuth]
      case .client: [.clientAuth]
      case .serverAndClient: [.serverAuth, .clientAuth]
      }
    let issuerKeyID = SubjectKeyIdentifier(hash: self.root.certificate.publicKey).keyIdentifier
    let extensions = try Certificate.Extensions {
      Critical(BasicConstraints.notCertificateAuthority)
      Critical(KeyUsage(digitalSignature: true))
      try ExtendedKeyUsage(keyUsages)
      SubjectKeyIdentifier(hash: key.publicKey)
      AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
      if !names.isEmpty {
        SubjectAlternativeNames(names)
      }
    }
    let certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: key.publicKey,
      notValidBefore: notValidBefore,
      notValidAfter: notValidAfter,
      issuer: self.root.certificate.subject,
      subject: subject,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: extensions,
      issuerPrivateKey: self.root.privateKey
    )
    return IssuedCertificate(certificate: certificate, privateKey: key)
  }

  private var organization: String {
    for attribute in self.root.certificate.subject.flatMap({ $0 })
    where attribute.type == .RDNAttributeType.organizationName {
      return String(describing: attribute.value)
    }
    return "Redress"
  }
}
