public import Foundation

/// The certificates a local Redress stack needs, kept under one directory and made on first use:
/// a development CA, a server certificate per service for localhost/127.0.0.1, the intake service's client
/// certificate for mutual TLS to remediation, and a client certificate for the person at the terminal.
///
/// Files (PEM): `ca.pem`, `ca-key.pem`, `intake.pem`/`intake-key.pem`, `remediation.pem`/`remediation-key.pem`,
/// `client.pem`/`client-key.pem`. Keys are readable by their owner only. Existing files are reused, so
/// restarting `redress dev` keeps the same CA and the CLI's profile stays valid.
public struct DevelopmentPKI: Sendable {
  /// Where the files are.
  public let directory: URL

  /// The common name the intake service's certificate carries; remediation maps it to the service identity.
  public static let intakeServiceName = "intake-service"
  /// The common name of the person's client certificate.
  public static let clientName = "dev-operator"

  public var caCertificate: URL { self.directory.appendingPathComponent("ca.pem") }
  public var caKey: URL { self.directory.appendingPathComponent("ca-key.pem") }
  public var intakeCertificate: URL { self.directory.appendingPathComponent("intake.pem") }
  public var intakeKey: URL { self.directory.appendingPathComponent("intake-key.pem") }
  public var remediationCertificate: URL { self.directory.appendingPathComponent("remediation.pem") }
  public var remediationKey: URL { self.directory.appendingPathComponent("remediation-key.pem") }
  public var clientCertificate: URL { self.directory.appendingPathComponent("client.pem") }
  public var clientKey: URL { self.directory.appendingPathComponent("client-key.pem") }

  /// Loads the PKI in `directory`, creating whatever is missing.
  ///
  /// - Returns: The PKI and whether anything was created.
  public static func loadOrCreate(in directory: URL) throws -> (pki: DevelopmentPKI, created: Bool) {
    try FileManager.default.createDirectory(
      at: directory,
      withIntermediateDirectories: true,
      attributes: [.posixPermissions: 0o700]
    )
    let pki = DevelopmentPKI(directory: directory)
    var created = false
    let authority: CertificateAuthority
    if FileManager.default.fileExists(atPath: pki.caCertificate.path),
      FileManager.default.fileExists(atPath: pki.caKey.path)
    {
      authority = CertificateAuthority(
        root: try IssuedCertificate(
          certificatePEM: String(contentsOf: pki.caCertificate, encoding: .utf8),
          privateKeyPEM: String(contentsOf: pki.caKey, encoding: .utf8)
        )
      )
    } else {
      authority = try CertificateAuthority.create(commonName: "Redress Development CA")
      try authority.root.write(certificateTo: pki.caCertificate, privateKeyTo: pki.caKey)
      created = true
    }
    let leaves: [(URL, URL, () throws -> IssuedCertificate)] = [
      (
        pki.intakeCertificate, pki.intakeKey,
        {
          // Intake serves on localhost and calls remediation with the same certificate.
          try authority.issue(
            commonName: Self.intakeServiceName,
            dnsNames: ["localhost"],
            ipAddresses: [[127, 0, 0, 1]],
            uris: ["spiffe://redress/intake"],
            usage: .serverAndClient
          )
        }
      ),
      (
        pki.remediationCertificate, pki.remediationKey,
        {
          try authority.issue(
            commonName: "remediation-service",
            dnsNames: ["localhost"],
            ipAddresses: [[127, 0, 0, 1]],
            uris: ["spiffe://redress/remediation"],
            usage: .serverAndClient
          )
        }
      ),
      (pki.clientCertificate, pki.clientKey, { try authority.issue(commonName: Self.clientName, usage: .client) }),
    ]
    for (certificate, key, issue) in leaves where !FileManager.default.fileExists(atPath: certificate.path) {
      try issue().write(certificateTo: certificate, privateKeyTo: key)
      created = true
    }
    return (pki, created)
  }
}
