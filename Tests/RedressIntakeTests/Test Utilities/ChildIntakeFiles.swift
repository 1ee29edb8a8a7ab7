import Foundation
import RedressPKI
import RedressService

/// TLS files and an identities file for a child `redress-intake`, minted into `directory`.
struct ChildIntakeFiles {
  static let token = "crash-test-token"
  let arguments: [String]

  init(directory: URL) throws {
    let ca = try CertificateAuthority.create(commonName: "Crash Test CA")
    let server = try ca.issue(
      commonName: "localhost", dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], usage: .server)
    let caURL = directory.appendingPathComponent("ca.pem")
    try ca.root.certificatePEM().write(to: caURL, atomically: true, encoding: .utf8)
    let certURL = directory.appendingPathComponent("server.pem")
    let keyURL = directory.appendingPathComponent("server-key.pem")
    try server.write(certificateTo: certURL, privateKeyTo: keyURL)
    let identities = """
      {"identities": [{"name": "crash-tool", "tenant": "acme", "roles": ["submit", "read"],
        "token_sha256": ["\(IdentityDirectory.digest(ofToken: Self.token))"]}]}
      """
    let identitiesURL = directory.appendingPathComponent("identities.json")
    try identities.write(to: identitiesURL, atomically: true, encoding: .utf8)
    self.arguments = [
      "--host", "127.0.0.1", "--port", "0",
      "--data-dir", directory.appendingPathComponent("data").path,
      "--tls-cert", certURL.path, "--tls-key", keyURL.path, "--tls-ca", caURL.path,
      "--identities", identitiesURL.path,
      "--rate-per-second", "0",
      "--log-level", "info",
    ]
    self.caPEM = try ca.root.certificatePEM()
  }

  let caPEM: String
}
