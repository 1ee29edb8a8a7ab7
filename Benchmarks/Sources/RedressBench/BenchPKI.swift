import Foundation
import NIOSSL
import RedressPKI

/// One CA and a server leaf for 127.0.0.1/localhost, minted in-process at start (RedressPKI) so every
/// scenario (Redress, HTTP/2, the raw TLS floor) uses the very same certificates and keys.
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

  init() throws {
    let authority = try CertificateAuthority.create(
      commonName: "Redress Bench CA",
      organization: "Redress benchmarks",
      validity: 7 * 24 * 60 * 60
    )
    let leaf = try authority.issue(
      commonName: "localhost",
      dnsNames: ["localhost"],
      ipAddresses: [[127, 0, 0, 1]],
      usage: .server
    )
    self.caPEM = try authority.root.certificatePEM()
    self.caCertificate = try NIOSSLCertificate(bytes: Array(self.caPEM.utf8), format: .pem)
    self.serverCertificatePEM = try leaf.certificatePEM()
    self.serverCertificate = try NIOSSLCertificate(bytes: Array(self.serverCertificatePEM.utf8), format: .pem)
    self.serverKeyPEM = try leaf.privateKeyPEM()
    self.serverKey = try NIOSSLPrivateKey(bytes: Array(self.serverKeyPEM.utf8), format: .pem)
  }
}
