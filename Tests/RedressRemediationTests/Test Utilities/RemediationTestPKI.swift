import Foundation
import NIOSSL
import RedressPKI
import RedressWire

/// Certificates for remediation's tests, minted in-process with RedressPKI: one CA and a server leaf for
/// localhost/127.0.0.1.
struct RemediationTestPKI: Sendable {
  let ca: IssuedCertificate
  let server: IssuedCertificate
  /// Intake's client certificate (CN intake-service).
  let intakeService: IssuedCertificate

  static let shared: RemediationTestPKI = {
    do {
      let authority = try CertificateAuthority.create(commonName: "Remediation Test CA")
      return RemediationTestPKI(
        ca: authority.root,
        server: try authority.issue(
          commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server),
        intakeService: try authority.issue(commonName: "intake-service", uris: ["spiffe://redress/intake"], usage: .client)
      )
    } catch {
      fatalError("cannot mint the remediation test PKI: \(error)")
    }
  }()

  func serverSecurity() throws -> ServerSecurity {
    .tls(
      ServerTLS(
        certificateChain: [try NIOSSLCertificate(bytes: self.server.certificateDER(), format: .der)],
        privateKey: try NIOSSLPrivateKey(bytes: self.server.privateKeyDER(), format: .der),
        clientCertificates: .optional,
        trustRoots: [try NIOSSLCertificate(bytes: self.ca.certificateDER(), format: .der)]
      )
    )
  }

  /// Client TLS trusting the CA, presenting `certificate` if given.
  func clientSecurity(presenting certificate: IssuedCertificate? = nil) throws -> ClientSecurity {
    .tls(
      ClientTLS(
        trustRoots: [try NIOSSLCertificate(bytes: self.ca.certificateDER(), format: .der)],
        certificateChain: try certificate.map { [try NIOSSLCertificate(bytes: $0.certificateDER(), format: .der)] } ?? [],
        privateKey: try certificate.map { try NIOSSLPrivateKey(bytes: $0.privateKeyDER(), format: .der) }
      )
    )
  }
}
