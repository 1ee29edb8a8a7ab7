public import NIOCore

/// The eight octets each side sends first on a new connection (docs/PROTOCOL.md §3).
///
/// A client offers the range of protocol versions it speaks; the server answers with the one it
/// picked in both version octets, or with a `GOAWAY` and no preface if it speaks none of them.
public struct Preface: Hashable, Sendable {
  /// `"RDRS\r\n"`: identifies the protocol before any frame is parsed.
  public static let magic: [UInt8] = Array("RDRS\r\n".utf8)
  /// The encoded length of a preface.
  public static let length = 8
  /// The only version this implementation speaks.
  public static let currentVersion: UInt8 = 1

  /// The lowest version the sender speaks.
  public var minimumVersion: UInt8
  /// The highest version the sender speaks.
  public var maximumVersion: UInt8

  /// A preface offering the versions `minimumVersion...maximumVersion`.
  public init(minimumVersion: UInt8, maximumVersion: UInt8) {
    self.minimumVersion = minimumVersion
    self.maximumVersion = maximumVersion
  }

  /// A server's answer: the chosen version in both octets.
  public static func selected(_ version: UInt8) -> Preface {
    Preface(minimumVersion: version, maximumVersion: version)
  }

  /// A client's offer of the versions this implementation speaks.
  public static let clientDefault = Preface(minimumVersion: currentVersion, maximumVersion: currentVersion)

  /// Writes the eight octets into `buffer`.
  public func encode(into buffer: inout ByteBuffer) {
    buffer.writeBytes(Self.magic)
    buffer.writeInteger(self.minimumVersion)
    buffer.writeInteger(self.maximumVersion)
  }
}
