public import Foundation
import Crypto

/// Who may call a service: every identity, how it authenticates, and its tenant and roles.
///
/// An identity authenticates with a client certificate (matched by the certificate's subject common name or
/// one of its URI subject alternative names; the certificate itself was verified by TLS against the
/// configured CA) or with a bearer token. Tokens are stored only as SHA-256 digests and compared in constant
/// time.
public struct IdentityDirectory: Sendable {
  /// One configured identity.
  public struct Entry: Sendable, Hashable, Codable {
    /// The identity.
    public var name: String
    /// The tenant whose data the identity sees.
    public var tenant: String
    /// What the identity may do.
    public var roles: Set<Role>
    /// Certificate common names or URI SANs that authenticate as this identity.
    public var certificateNames: [String]
    /// Lower-case hex SHA-256 digests of the bearer tokens that authenticate as this identity.
    public var tokenSHA256: [String]

    public init(
      name: String,
      tenant: String,
      roles: Set<Role>,
      certificateNames: [String] = [],
      tokenSHA256: [String] = []
    ) {
      self.name = name
      self.tenant = tenant
      self.roles = roles
      self.certificateNames = certificateNames
      self.tokenSHA256 = tokenSHA256
    }

    enum CodingKeys: String, CodingKey {
      case name, tenant, roles
      case certificateNames = "certificate_names"
      case tokenSHA256 = "token_sha256"
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      self.name = try container.decode(String.self, forKey: .name)
      self.tenant = try container.decode(String.self, forKey: .tenant)
      self.roles = try container.decode(Set<Role>.self, forKey: .roles)
      self.certificateNames = try container.decodeIfPresent([String].self, forKey: .certificateNames) ?? []
      self.tokenSHA256 = try container.decodeIfPresent([String].self, forKey: .tokenSHA256) ?? []
    }

    /// The identity this entry authenticates as.
    public var identity: Identity {
      Identity(name: self.name, tenant: self.tenant, roles: self.roles)
    }
  }

  /// A configuration problem; the message says which entry and what to fix.
  public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
  }

  /// The configured identities, as given.
  public let entries: [Entry]
  private let byCertificateName: [String: Identity]
  private let tokens: [(digest: [UInt8], identity: Identity)]

  /// A directory of `entries`, checked: unique names, known roles, non-empty tenants, well-formed digests,
  /// and no certificate name or token shared by two identities.
  public init(entries: [Entry]) throws {
    var byCertificateName: [String: Identity] = [:]
    var tokens: [(digest: [UInt8], identity: Identity)] = []
    var names: Set<String> = []
    for entry in entries {
      guard !entry.name.isEmpty, names.insert(entry.name).inserted else {
        throw ConfigurationError(description: "identity names must be non-empty and unique ('\(entry.name)')")
      }
      guard !entry.tenant.isEmpty else {
        throw ConfigurationError(description: "identity '\(entry.name)' has no tenant")
      }
      let unknown = entry.roles.subtracting(Role.all)
      guard unknown.isEmpty else {
        let known = Role.all.map(\.rawValue).sorted().joined(separator: ", ")
        throw ConfigurationError(
          description: "identity '\(entry.name)' has unknown roles \(unknown.map(\.rawValue).sorted()); known: \(known)"
        )
      }
      // A service acts for every tenant it carries: it proves itself with a certificate over mutual TLS,
      // never with a token that could be copied into a script.
      guard !entry.roles.contains(.service) || entry.tokenSHA256.isEmpty else {
        throw ConfigurationError(
          description: "identity '\(entry.name)' has the service role and a token: service identities authenticate "
            + "with client certificates only (certificate_names)"
        )
      }
      for certificateName in entry.certificateNames {
        guard byCertificateName.updateValue(entry.identity, forKey: certificateName) == nil else {
          throw ConfigurationError(description: "certificate name '\(certificateName)' belongs to two identities")
        }
      }
      for hex in entry.tokenSHA256 {
        guard let digest = Self.bytes(fromHex: hex), digest.count == SHA256.byteCount else {
          throw ConfigurationError(
            description: "identity '\(entry.name)': token_sha256 must be 64 hex digits (the SHA-256 of the token)"
          )
        }
        tokens.append((digest, entry.identity))
      }
    }
    self.entries = entries
    self.byCertificateName = byCertificateName
    self.tokens = tokens
  }

  /// Loads a directory from a JSON file: `{"identities": [{"name": ..., "tenant": ..., "roles": [...],
  /// "certificate_names": [...], "token_sha256": [...]}]}`.
  public init(contentsOf url: URL) throws {
    struct File: Decodable { var identities: [Entry] }
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw ConfigurationError(description: "cannot read identities file \(url.path): \(error.localizedDescription)")
    }
    do {
      try self.init(entries: JSONDecoder().decode(File.self, from: data).identities)
    } catch let error as ConfigurationError {
      throw ConfigurationError(description: "\(url.path): \(error.description)")
    } catch {
      throw ConfigurationError(description: "\(url.path) is not a valid identities file: \(error)")
    }
  }

  /// The identity a verified client certificate authenticates as: by subject common name first, then by
  /// URI subject alternative names.
  public func identity(certificateCommonName: String?, uris: [String]) -> Identity? {
    if let commonName = certificateCommonName, let identity = self.byCertificateName[commonName] {
      return identity
    }
    for uri in uris {
      if let identity = self.byCertificateName[uri] {
        return identity
      }
    }
    return nil
  }

  /// The identity a bearer token authenticates as. Every configured digest is compared, in constant time,
  /// so timing reveals neither which identity matched nor how much of a digest did.
  public func identity(bearerToken token: String) -> Identity? {
    let digest = Array(SHA256.hash(data: Data(token.utf8)))
    var found: Identity?
    for candidate in self.tokens {
      if Self.constantTimeEquals(candidate.digest, digest) && found == nil {
        found = candidate.identity
      }
    }
    return found
  }

  /// The lower-case hex SHA-256 of `token`, the form the identities file stores.
  public static func digest(ofToken token: String) -> String {
    SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
  }

  static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices {
      difference |= lhs[index] ^ rhs[index]
    }
    return difference == 0
  }

  private static func bytes(fromHex hex: String) -> [UInt8]? {
    let characters = Array(hex.utf8)
    guard characters.count.isMultiple(of: 2) else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(characters.count / 2)
    var index = 0
    while index < characters.count {
      guard let high = Self.nibble(characters[index]), let low = Self.nibble(characters[index + 1]) else {
        return nil
      }
      bytes.append(high << 4 | low)
      index += 2
    }
    return bytes
  }

  private static func nibble(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
