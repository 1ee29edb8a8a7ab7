/// Hand-built frame octets, so tests can send what the encoder never would.
enum RawFrame {
  /// A frame header with the given fields, then `payload`; `length` overrides the real length.
  static func octets(
    type: UInt8,
    flags: UInt8 = 0,
    stream: UInt32,
    payload: [UInt8] = [],
    length: Int? = nil
  ) -> [UInt8] {
    let length = length ?? payload.count
    return [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
      + [type, flags] + self.u32(stream) + payload
  }

  /// A `HEADERS` payload: the path, then `metadataBlock` as given.
  static func headersPayload(path: String = "/grpc.testing.TestService/UnaryCall", metadataBlock: [UInt8]) -> [UInt8] {
    self.u16(path.utf8.count) + Array(path.utf8) + metadataBlock
  }

  /// A metadata block: `count` (which may lie) and the entries as given.
  static func metadataBlock(count: Int, _ entries: [UInt8]...) -> [UInt8] {
    self.u16(count) + entries.flatMap { $0 }
  }

  /// One metadata entry; `valueLength` overrides the real value length.
  static func metadataEntry(kind: UInt8, key: String, value: [UInt8], valueLength: Int? = nil) -> [UInt8] {
    [kind, UInt8(key.utf8.count)] + Array(key.utf8) + self.u32(UInt32(valueLength ?? value.count)) + value
  }

  static func u16(_ value: Int) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
  }

  static func u32(_ value: UInt32) -> [UInt8] {
    [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
  }
}
