import Foundation
import NIOSSL
import RedressPKI
import RedressWire

/// Certificates for remediation's tests, minted in-process with RedressPKI: one CA and a server leaf for
/// localhost/127.0.0.1.
struct RemediationTestPKI: Sendable {
  let ca: IssuedCertificate
  let server: IssuedCertificate

  static let shared: RemediationTestPKI = {
    do {
      let authority = try CertificateAuthority.create(commonName: "Remediation Test CA")
      return RemediationTestPKI(
        ca: authority.root,
        server: try authority.issue(
          commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server)
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

  func clientSecurity() throws -> ClientSecurity {
    .tls(ClientTLS(trustRoots: [try NIOSSLCertificate(bytes: self.ca.certificateDER(), format: .der)]))
  }
}
