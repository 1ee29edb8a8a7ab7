import ArgumentParser
import Foundation
import RedressPKI
import RedressService

struct Certs: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Issue a CA, server and client certificates, and tokens for a deployment.",
    discussion: """
      Certificates are minted in-process (swift-certificates, P-256). Keys are written readable by their \
      owner only. Example:
        redress certs ca --out pki
        redress certs issue --ca pki --name intake-service --dns intake.internal --server --client --out pki
        redress certs token --name support-console
      """,
    subcommands: [CA.self, Issue.self, Token.self]
  )

  struct CA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a new certificate authority (ca.pem, ca-key.pem).")
    @Option(help: ArgumentHelp("Directory to write to.", valueName: "dir")) var out: String
    @Option(name: .customLong("common-name")) var commonName = "Redress CA"
    @Option(help: "Validity in days.") var days = 3650

    func run() throws {
      let directory = URL(fileURLWithPath: self.out, isDirectory: true)
      let certificate = directory.appendingPathComponent("ca.pem")
      guard !FileManager.default.fileExists(atPath: certificate.path) else {
        throw ValidationError("\(certificate.path) exists; refusing to replace a CA. Remove it first if you mean to.")
      }
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      let authority = try CertificateAuthority.create(
        commonName: self.commonName,
        validity: TimeInterval(self.days) * 24 * 60 * 60
      )
      try authority.root.write(certificateTo: certificate, privateKeyTo: directory.appendingPathComponent("ca-key.pem"))
      Output.emit(certificate.path)
    }
  }

  struct Issue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Issue a certificate signed by a CA: NAME.pem and NAME-key.pem.",
      discussion: "The common name is the identity name services map the certificate to (identities file: certificate_names)."
    )
    @Option(help: ArgumentHelp("Directory holding ca.pem and ca-key.pem.", valueName: "dir")) var ca: String
    @Option(help: "Common name: the identity or service name.") var name: String
    @Option(name: .customLong("dns"), help: "A DNS name (repeatable).") var dnsNames: [String] = []
    @Option(name: .customLong("ip"), help: "An IPv4 address (repeatable).") var ipAddresses: [String] = []
    @Option(name: .customLong("uri"), help: "A URI SAN, e.g. spiffe://redress/intake (repeatable).") var uris: [String] = []
    @Flag(help: "Usable as a server certificate.") var server = false
    @Flag(help: "Usable as a client certificate.") var client = false
    @Option(help: "Validity in days.") var days = 365
    @Option(help: ArgumentHelp("Directory to write to.", valueName: "dir")) var out: String

    func validate() throws {
      guard self.server || self.client else {
        throw ValidationError("Say what the certificate is for: --server, --client, or both.")
      }
      if self.server && self.dnsNames.isEmpty && self.ipAddresses.isEmpty {
        throw ValidationError("A server certificate needs at least one --dns or --ip.")
      }
      for ip in self.ipAddresses where Self.octets(ip) == nil {
        throw ValidationError("'\(ip)' is not an IPv4 address.")
      }
    }

    static func octets(_ text: String) -> [UInt8]? {
      let parts = text.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
      return parts.count == 4 ? parts : nil
    }

    func run() throws {
      let caDirectory = URL(fileURLWithPath: self.ca, isDirectory: true)
      let authority = CertificateAuthority(
        root: try IssuedCertificate(
          certificatePEM: String(contentsOf: caDirectory.appendingPathComponent("ca.pem"), encoding: .utf8),
          privateKeyPEM: String(contentsOf: caDirectory.appendingPathComponent("ca-key.pem"), encoding: .utf8)
        )
      )
      let usage: CertificateAuthority.Usage =
        self.server && self.client ? .serverAndClient : (self.server ? .server : .client)
      let issued = try authority.issue(
        commonName: self.name,
        dnsNames: self.dnsNames,
        ipAddresses: self.ipAddresses.compactMap(Self.octets),
        uris: self.uris,
        usage: usage,
        notValidAfter: Date() + TimeInterval(self.days) * 24 * 60 * 60
      )
      let directory = URL(fileURLWithPath: self.out, isDirectory: true)
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      let certificate = directory.appendingPathComponent("\(self.name).pem")
      try issued.write(certificateTo: certificate, privateKeyTo: directory.appendingPathComponent("\(self.name)-key.pem"))
      Output.emit(certificate.path)
    }
  }

  struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a random bearer token; prints it once, and the SHA-256 digest for the identities file."
    )
    @Option(help: "The identity the token is for (only echoed in the output).") var name: String

    func run() throws {
      let token = DevStack.makeToken()
      Output.emit("token:        \(token)")
      Output.emit("token_sha256: \(IdentityDirectory.digest(ofToken: token))")
      Output.emit("Give the token to '\(self.name)' once; store only the digest in the identities file.")
    }
  }
}
