public import GRPCCore
public import X509
import NIOSSL
import SwiftASN1

/// Who is on the other end of a connection, from the certificate it presented and TLS verified.
///
/// Servers find it in every handler's and interceptor's `ServerContext` (``GRPCCore/ServerContext/peerIdentity``)
/// so later layers can authorize by it.
public struct PeerIdentity: ServerContext.TransportSpecific, Hashable, Sendable {
  /// The certificate's subject, as an RFC 4514 distinguished name (`CN=intake,O=Redress`).
  public var subject: String
  /// The subject alternative names: DNS names, URIs, e-mail addresses and IP addresses, as text.
  public var subjectAlternativeNames: [String]
  /// The certificate itself.
  public var certificate: Certificate?

  /// An identity with the given names (for tests and in-process transports).
  public init(subject: String, subjectAlternativeNames: [String], certificate: Certificate? = nil) {
    self.subject = subject
    self.subjectAlternativeNames = subjectAlternativeNames
    self.certificate = certificate
  }

  init?(_ certificate: NIOSSLCertificate) {
    guard let der = try? certificate.toDERBytes(),
      let parsed = try? Certificate(derEncoded: der)
    else { return nil }
    var names: [String] = []
    if let sans = try? parsed.extensions.subjectAlternativeNames {
      for name in sans {
        switch name {
        case .dnsName(let dns): names.append(dns)
        case .uniformResourceIdentifier(let uri): names.append(uri)
        case .rfc822Name(let email): names.append(email)
        case .ipAddress(let octets): names.append(Self.formatIP(octets.bytes))
        default: continue
        }
      }
    }
    self.init(subject: parsed.subject.description, subjectAlternativeNames: names, certificate: parsed)
  }

  private static func formatIP(_ bytes: ArraySlice<UInt8>) -> String {
    if bytes.count == 4 {
      return bytes.map(String.init).joined(separator: ".")
    }
    var groups: [String] = []
    var index = bytes.startIndex
    while index + 1 < bytes.endIndex {
      groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
      index += 2
    }
    return groups.joined(separator: ":")
  }
}

extension ServerContext {
  /// The verified identity of the client, if it presented a certificate.
  public var peerIdentity: PeerIdentity? {
    self.transportSpecific as? PeerIdentity
  }
}
