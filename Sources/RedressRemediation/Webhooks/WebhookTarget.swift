public import Foundation
public import NIOCore
import NIOPosix

/// Where webhooks may go: HTTPS URLs whose host resolves to a public address.
///
/// A subscription's URL is checked when it is created and its host is resolved again before every attempt;
/// the attempt then connects to the very address that was checked (``WebhookSender`` pins it), so a name that
/// later resolves to an internal address (DNS rebinding) is refused rather than reached. Redirects are never
/// followed. Loopback, private, link-local, shared (CGNAT), multicast and reserved ranges are refused unless
/// ``allowPrivateAddresses`` (development and tests only); plain `http://` unless ``allowPlainHTTP``.
public struct WebhookTargetPolicy: Sendable, Hashable {
  public var allowPrivateAddresses: Bool
  public var allowPlainHTTP: Bool
  /// The longest URL accepted, in bytes.
  public static let maxURLBytes = 2048

  public init(allowPrivateAddresses: Bool = false, allowPlainHTTP: Bool = false) {
    self.allowPrivateAddresses = allowPrivateAddresses
    self.allowPlainHTTP = allowPlainHTTP
  }

  /// A URL's parts once its syntax is accepted.
  public struct Target: Sendable, Hashable {
    public var url: URL
    public var host: String
    public var port: Int
  }

  /// Why a target is refused, in words that say what to change.
  public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { self.reason }
  }

  /// Checks the URL's syntax and scheme (no network).
  public func parse(_ text: String) throws(Refusal) -> Target {
    guard !text.isEmpty else { throw Refusal(reason: "is required: the https:// URL to deliver events to") }
    guard text.utf8.count <= Self.maxURLBytes else { throw Refusal(reason: "must be at most \(Self.maxURLBytes) bytes") }
    guard let components = URLComponents(string: text), let url = components.url, let scheme = components.scheme?.lowercased()
    else { throw Refusal(reason: "is not a URL; give one like https://hooks.example.com/redress") }
    switch scheme {
    case "https": break
    case "http" where self.allowPlainHTTP: break
    case "http": throw Refusal(reason: "must use https:// (events carry client data and are signed, not encrypted)")
    default: throw Refusal(reason: "must be an https:// URL, not \(scheme)://")
    }
    guard let host = components.host, !host.isEmpty else { throw Refusal(reason: "has no host") }
    guard components.user == nil, components.password == nil else {
      throw Refusal(reason: "must not carry a user name or password; the signature authenticates Redress")
    }
    guard components.fragment == nil else { throw Refusal(reason: "must not have a #fragment") }
    let port = components.port ?? (scheme == "https" ? 443 : 80)
    guard (1...65_535).contains(port) else { throw Refusal(reason: "has an invalid port") }
    // Brackets around an IPv6 literal are URL syntax, not part of the address.
    let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    return Target(url: url, host: bare, port: port)
  }

  /// Resolves the target's host (on NIO's blocking-I/O pool) and checks the address it would connect to.
  ///
  /// - Returns: The address to connect to.
  public func resolve(_ target: Target) async throws -> SocketAddress {
    let host = target.host
    let port = target.port
    let address: SocketAddress
    do {
      address = try await NIOThreadPool.singleton.runIfActive {
        try SocketAddress.makeAddressResolvingHost(host, port: port)
      }
    } catch {
      throw Refusal(reason: "host \(host) does not resolve")
    }
    if !self.allowPrivateAddresses, let range = Self.forbiddenRange(of: address) {
      throw Refusal(
        reason: "host \(host) resolves to \(address.ipAddress ?? "?"), a \(range) address; Redress sends webhooks only to public addresses"
      )
    }
    return address
  }

  /// The kind of non-public range `address` is in, or `nil` for a public address.
  public static func forbiddenRange(of address: SocketAddress) -> String? {
    switch address {
    case .v4(let v4):
      let value = UInt32(bigEndian: v4.address.sin_addr.s_addr)
      return Self.forbiddenRange(ipv4: value)
    case .v6(let v6):
      let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
      return Self.forbiddenRange(ipv6: bytes)
    default:
      return "non-IP"
    }
  }

  static func forbiddenRange(ipv4 value: UInt32) -> String? {
    func within(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32, _ prefix: UInt32) -> Bool {
      let network = a << 24 | b << 16 | c << 8 | d
      let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
      return value & mask == network & mask
    }
    if within(127, 0, 0, 0, 8) { return "loopback" }
    if within(10, 0, 0, 0, 8) || within(172, 16, 0, 0, 12) || within(192, 168, 0, 0, 16) { return "private" }
    if within(169, 254, 0, 0, 16) { return "link-local" }
    if within(100, 64, 0, 0, 10) { return "shared (carrier-grade NAT)" }
    if within(0, 0, 0, 0, 8) || within(192, 0, 0, 0, 24) || within(198, 18, 0, 0, 15) || within(240, 0, 0, 0, 4) {
      return "reserved"
    }
    if within(224, 0, 0, 0, 4) { return "multicast" }
    return nil
  }

  static func forbiddenRange(ipv6 bytes: [UInt8]) -> String? {
    guard bytes.count == 16 else { return "malformed" }
    let embeddedV4 = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
    if bytes[0..<15].allSatisfy({ $0 == 0 }) { return bytes[15] == 1 ? "loopback" : "unspecified" }
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach the IPv4 address inside.
    if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
      return Self.forbiddenRange(ipv4: embeddedV4)
    }
    if bytes[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] { return Self.forbiddenRange(ipv4: embeddedV4) }
    if bytes[0..<12].allSatisfy({ $0 == 0 }) { return "reserved" }  // IPv4-compatible, deprecated
    if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return "link-local" }
    if bytes[0] & 0xfe == 0xfc { return "private" }  // unique local fc00::/7
    if bytes[0] == 0xff { return "multicast" }
    return nil
  }
}
