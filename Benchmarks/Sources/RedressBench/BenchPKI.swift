import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// One CA and a server leaf for 127.0.0.1/localhost, minted in-process at start so every scenario
/// (Redress, HTTP/2, the raw TLS floor) uses the very same certificates and keys.
///
/// A trimmed copy of Tests/RedressWireTests/Test Utilities/TestPKI.swift: an executable cannot
/// import test code.
struct BenchPKI: Sendable {
  /// The CA's certificate, which clients trust.
  let caCertificate: NIOSSLCertificate
  /// The CA's certificate in PEM, for grpc-swift-nio-transport's configuration.
  let caPEM: String
  /// The server's leaf certificate.
  let serverCertificate: NIOSSLCertificate
  /// The server's private key.
  let serverKey: NIOSSLPrivateKey
  /// The server leaf in PEM.
  let serverCertificatePEM: String
  /// The server key in PKCS#8 PEM.
  let serverKeyPEM: String

  init(now: Date = Date()) throws {
    let caKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let caName = try DistinguishedName {
      OrganizationName("Redress benchmarks")
      CommonName("Redress Bench CA")
    }
    let ca = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: caKey.publicKey,
      notValidBefore: now - 24 * 60 * 60,
      notValidAfter: now + 7 * 24 * 60 * 60,
      issuer: caName,
      subject: caName,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
        SubjectKeyIdentifier(hash: caKey.publicKey)
      },
      issuerPrivateKey: caKey
    )

    let leafKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let leaf = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: leafKey.publicKey,
      notValidBefore: now - 60 * 60,
      notValidAfter: now + 24 * 60 * 60,
      issuer: caName,
      subject: try DistinguishedName {
        OrganizationName("Redress benchmarks")
        CommonName("localhost")
      },
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.notCertificateAuthority)
        Critical(KeyUsage(digitalSignature: true))
        try ExtendedKeyUsage([.serverAuth])
        SubjectKeyIdentifier(hash: leafKey.publicKey)
        AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: caKey.publicKey).keyIdentifier)
        SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
      },
      issuerPrivateKey: caKey
    )

    self.caPEM = try ca.serializeAsPEM().pemString
    self.caCertificate = try NIOSSLCertificate(bytes: Array(self.caPEM.utf8), format: .pem)
    self.serverCertificatePEM = try leaf.serializeAsPEM().pemString
    self.serverCertificate = try NIOSSLCertificate(bytes: Array(self.serverCertificatePEM.utf8), format: .pem)
    self.serverKeyPEM = try leafKey.serializeAsPEM().pemString
    self.serverKey = try NIOSSLPrivateKey(bytes: Array(self.serverKeyPEM.utf8), format: .pem)
  }
}
