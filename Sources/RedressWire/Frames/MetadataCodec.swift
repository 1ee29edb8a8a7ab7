public import GRPCCore
public import NIOCore

/// Encodes and decodes the metadata block of `HEADERS` and `TRAILERS` (docs/PROTOCOL.md §6).
///
/// A block is a big-endian `u16` entry count followed by that many entries of
/// `kind:u8 keyLength:u8 key valueLength:u32 value`. Kind 0 is text (UTF-8, key not ending in
/// `-bin`), kind 1 is binary (key ending in `-bin`). Keys are 1–255 octets of `0-9 a-z - _ .`.
public enum MetadataCodec {
  /// The most entries a block may hold (the count field's maximum).
  public static let maxEntries = Int(UInt16.max)

  /// Text kind.
  static let textKind: UInt8 = 0
  /// Binary kind.
  static let binaryKind: UInt8 = 1

  /// The number of octets `metadata` takes when encoded.
  public static func encodedLength(of metadata: Metadata) -> Int {
    var length = 2
    for (key, value) in metadata {
      length += 1 + 1 + key.utf8.count + 4
      switch value {
      case .string(let text): length += text.utf8.count
      case .binary(let bytes): length += bytes.count
      }
    }
    return length
  }

  /// Appends the encoded block to `buffer`.
  ///
  /// Keys are lowercased, as gRPC requires; a key ending in `-bin` is always sent as binary.
  public static func encode(_ metadata: Metadata, into buffer: inout ByteBuffer) {
    buffer.writeInteger(UInt16(truncatingIfNeeded: metadata.count))
    for (key, value) in metadata {
      let key = key.lowercased()
      // A key ending in -bin is always sent as binary, whatever the value's Swift type.
      let kind = key.hasSuffix("-bin") ? Self.binaryKind : Self.textKind
      buffer.writeInteger(kind)
      buffer.writeInteger(UInt8(truncatingIfNeeded: key.utf8.count))
      buffer.writeString(key)
      switch value {
      case .string(let text):
        buffer.writeInteger(UInt32(text.utf8.count))
        buffer.writeString(text)
      case .binary(let bytes):
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
      }
    }
  }

  /// Checks that metadata can be sent: keys valid and short enough, text values valid.
  ///
  /// - Returns: a message saying what is wrong, or `nil` if it can be sent.
  public static func problem(in metadata: Metadata) -> String? {
    if metadata.count > Self.maxEntries {
      return "metadata has \(metadata.count) entries; the most is \(Self.maxEntries)"
    }
    for (key, value) in metadata {
      let key = key.lowercased()
      guard Self.isValidKey(Array(key.utf8)) else {
        return "metadata key '\(key.prefix(64))' is invalid: use 1-255 characters of 0-9 a-z - _ ."
      }
      if case .binary = value, !key.hasSuffix("-bin") {
        return "metadata key '\(key)' has a binary value: binary keys must end in '-bin'"
      }
    }
    return nil
  }

  /// Reads a whole block from `buffer`, which must hold exactly the block.
  ///
  /// - Throws: a stream-scoped ``WireError`` with `PROTOCOL_ERROR` when a count or length lies,
  ///   a key is invalid, a text value is not UTF-8, or octets are left over.
  public static func decode(_ buffer: inout ByteBuffer, stream: UInt32) throws(WireError) -> Metadata {
    guard let count = buffer.readInteger(as: UInt16.self) else {
      throw WireError(.protocolError, "metadata block is missing its entry count", stream: stream)
    }
    var metadata = Metadata()
    metadata.reserveCapacity(Int(count))
    for index in 0..<Int(count) {
      guard let kind = buffer.readInteger(as: UInt8.self),
        let keyLength = buffer.readInteger(as: UInt8.self)
      else {
        throw WireError(
          .protocolError,
          "metadata entry \(index) of \(count) is truncated (the count says more entries than there are)",
          stream: stream
        )
      }
      guard let keyBytes = buffer.readBytes(length: Int(keyLength)) else {
        throw WireError(.protocolError, "metadata entry \(index): key length \(keyLength) runs past the block", stream: stream)
      }
      guard Self.isValidKey(keyBytes) else {
        throw WireError(.protocolError, "metadata entry \(index): key is not 1-255 characters of 0-9 a-z - _ .", stream: stream)
      }
      let key = String(decoding: keyBytes, as: UTF8.self)
      guard let valueLength = buffer.readInteger(as: UInt32.self),
        let valueSlice = buffer.readSlice(length: Int(valueLength))
      else {
        throw WireError(.protocolError, "metadata entry \(index) '\(key)': value length runs past the block", stream: stream)
      }
      let isBinaryKey = key.hasSuffix("-bin")
      switch kind {
      case Self.textKind:
        guard !isBinaryKey else {
          throw WireError(.protocolError, "metadata entry \(index) '\(key)': keys ending in -bin must be binary", stream: stream)
        }
        guard let text = valueSlice.readableUTF8() else {
          throw WireError(.protocolError, "metadata entry \(index) '\(key)': text value is not valid UTF-8", stream: stream)
        }
        metadata.addString(text, forKey: key)
      case Self.binaryKind:
        guard isBinaryKey else {
          throw WireError(.protocolError, "metadata entry \(index) '\(key)': binary values need a key ending in -bin", stream: stream)
        }
        metadata.addBinary(Array(buffer: valueSlice), forKey: key)
      default:
        throw WireError(.protocolError, "metadata entry \(index) '\(key)': unknown value kind \(kind)", stream: stream)
      }
    }
    guard buffer.readableBytes == 0 else {
      throw WireError(.protocolError, "metadata block has \(buffer.readableBytes) octets after its last entry", stream: stream)
    }
    return metadata
  }

  static func isValidKey(_ bytes: some Collection<UInt8>) -> Bool {
    guard (1...255).contains(bytes.count) else { return false }
    return bytes.allSatisfy { byte in
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
        true
      default:
        false
      }
    }
  }
}

extension ByteBuffer {
  /// The readable octets as a string, or `nil` if they are not valid UTF-8.
  ///
  /// Named apart from NIOCore's throwing `getUTF8ValidatedString(at:length:)`, whose identical
  /// shape made calls ambiguous.
  func readableUTF8() -> String? {
    String(validating: self.readableBytesView, as: UTF8.self)
  }
}
