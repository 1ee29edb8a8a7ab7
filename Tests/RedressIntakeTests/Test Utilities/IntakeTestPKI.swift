import Foundation
import NIOSSL
import RedressPKI
import RedressWire

/// Certificates for intake's tests, minted in-process with RedressPKI: one CA, a server leaf for
/// localhost/127.0.0.1, and client leaves.
struct IntakeTestPKI: Sendable {
  let ca: IssuedCertificate
  let server: IssuedCertificate
  /// Intake's own client certificate towards remediation (CN intake-service).
  let intakeService: IssuedCertificate
  /// A reporting tool that authenticates by certificate (CN cert-tool).
  let certTool: IssuedCertificate
  /// Signed by the CA but mapped to no identity.
  let unmapped: IssuedCertificate

  static let shared: IntakeTestPKI = {
    do {
      let authority = try CertificateAuthority.create(commonName: "Intake Test CA")
      return IntakeTestPKI(
        ca: authority.root,
        server: try authority.issue(
          commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server),
        intakeService: try authority.issue(
          commonName: "intake-service", uris: ["spiffe://redress/intake"], usage: .client),
        certTool: try authority.issue(commonName: "cert-tool", usage: .client),
        unmapped: try authority.issue(commonName: "nobody-knows-me", usage: .client)
      )
    } catch {
      fatalError("cannot mint the intake test PKI: \(error)")
    }
  }()

  static func nio(_ certificate: IssuedCertificate) throws -> NIOSSLCertificate {
    try NIOSSLCertificate(bytes: certificate.certificateDER(), format: .der)
  }

  static func nioKey(_ certificate: IssuedCertificate) throws -> NIOSSLPrivateKey {
    try NIOSSLPrivateKey(bytes: certificate.privateKeyDER(), format: .der)
  }

  /// Server TLS with the server leaf; client certificates `clientCertificates`, verified against the CA.
  func serverSecurity(clientCertificates: ServerTLS.ClientCertificates = .optional) throws -> ServerSecurity {
    .tls(
      ServerTLS(
        certificateChain: [try Self.nio(self.server)],
        privateKey: try Self.nioKey(self.server),
        clientCertificates: clientCertificates,
        trustRoots: [try Self.nio(self.ca)]
      )
    )
  }

  /// Client TLS trusting the CA, presenting `certificate` if given.
  func clientSecurity(presenting certificate: IssuedCertificate? = nil) throws -> ClientSecurity {
    .tls(
      ClientTLS(
        trustRoots: [try Self.nio(self.ca)],
        certificateChain: try certificate.map { [try Self.nio($0)] } ?? [],
        privateKey: try certificate.map { try Self.nioKey($0) }
      )
    )
  }
}
