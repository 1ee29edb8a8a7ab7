import Foundation
import RedressPKI
import RedressService

/// The files `redress dev` keeps under its data directory besides the databases: certificates, tokens, the
/// identities both services load, and the CLI profile.
enum DevStack {
  /// Tenant every dev identity belongs to.
  static let tenant = "dev"

  /// A random 256-bit bearer token, base64url.
  static func makeToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    return Data(bytes).base64EncodedString()
      .replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  /// The dev identities: a person who reports, operates and manages the tenant's webhooks, a second person who
  /// approves, a legal owner, a client-facing tool, a metrics scraper, and the intake service itself (by its
  /// certificate).
  static let roles: [(name: String, roles: Set<Role>)] = [
    ("operator", [.submit, .read, .operator, .admin]),
    ("approver", [.read, .approver]),
    ("legal", [.read, .legal]),
    ("client-tool", [.submit, .clientTool]),
    ("metrics", [.metrics]),
  ]

  /// Loads the tokens in `directory/tokens.json`, making any that are missing. The file is owner-only.
  static func loadOrCreateTokens(in directory: URL) throws -> [String: String] {
    let file = directory.appendingPathComponent("tokens.json")
    var tokens: [String: String] = [:]
    if let data = FileManager.default.contents(atPath: file.path) {
      tokens = try JSONDecoder().decode([String: String].self, from: data)
    }
    var changed = false
    for (name, _) in Self.roles where tokens[name] == nil {
      tokens[name] = Self.makeToken()
      changed = true
    }
    if changed {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try? FileManager.default.removeItem(at: file)
      guard FileManager.default.createFile(
        atPath: file.path,
        contents: try encoder.encode(tokens),
        attributes: [.posixPermissions: 0o600]
      ) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
      }
    }
    return tokens
  }

  /// Writes the identities file both services load: tokens by digest only, and the certificate names.
  static func writeIdentities(tokens: [String: String], to file: URL) throws {
    var entries: [IdentityDirectory.Entry] = Self.roles.map { name, roles in
      IdentityDirectory.Entry(
        name: name,
        tenant: Self.tenant,
        roles: roles,
        certificateNames: name == "operator" ? [DevelopmentPKI.clientName] : [],
        tokenSHA256: tokens[name].map { [IdentityDirectory.digest(ofToken: $0)] } ?? []
      )
    }
    entries.append(
      IdentityDirectory.Entry(
        name: DevelopmentPKI.intakeServiceName,
        tenant: Self.tenant,
        roles: [.service],
        certificateNames: [DevelopmentPKI.intakeServiceName]
      )
    )
    struct File: Encodable { var identities: [IdentityDirectory.Entry] }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(File(identities: entries)).write(to: file, options: .atomic)
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
  }

  /// Writes the CLI profile: addresses, CA, the person's certificate, and every dev token (owner-only).
  static func writeProfile(
    intake: String,
    remediation: String,
    intakeGRPC: String?,
    remediationGRPC: String?,
    pki: DevelopmentPKI,
    tokens: [String: String],
    to file: URL
  ) throws {
    let profile = Profile(
      intake: intake,
      remediation: remediation,
      intakeGRPC: intakeGRPC,
      remediationGRPC: remediationGRPC,
      ca: pki.caCertificate.path,
      cert: nil,
      key: nil,
      tokens: tokens,
      defaultIdentity: "operator"
    )
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try? FileManager.default.removeItem(at: file)
    guard FileManager.default.createFile(
      atPath: file.path,
      contents: try encoder.encode(profile),
      attributes: [.posixPermissions: 0o600]
    ) else {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
    }
  }
}
