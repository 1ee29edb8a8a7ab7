public import Foundation

/// Server-assigned ids: a prefix and a ULID (48-bit millisecond time + 80 random bits, Crockford base32),
/// e.g. `inc_01JAB3KQ5Z8X4M2N7P9R0STVWY`. They sort by creation time and never collide in practice.
public enum ResourceID {
  private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

  /// A new id `<prefix>_<ULID>` for an item created at `date`.
  public static func make(prefix: String, at date: Date = Date()) -> String {
    var generator = SystemRandomNumberGenerator()
    return Self.make(prefix: prefix, at: date, using: &generator)
  }

  /// As ``make(prefix:at:)`` with a given random source (tests).
  public static func make(prefix: String, at date: Date, using generator: inout some RandomNumberGenerator) -> String {
    let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
    // 128 bits: 48 of time, 80 random, as two words.
    let high = (milliseconds << 16) | UInt64(generator.next() as UInt16)
    let low: UInt64 = generator.next()
    var characters: [UInt8] = []
    characters.reserveCapacity(26)
    // 26 characters × 5 bits = 130 bits; the first character carries the top 3 bits.
    for index in 0..<26 {
      let bitOffset = 125 - index * 5  // position of this group's lowest bit, from the right
      let value = Self.bits(high: high, low: low, from: bitOffset)
      characters.append(Self.alphabet[Int(value)])
    }
    return prefix + "_" + String(decoding: characters, as: UTF8.self)
  }

  /// The 5 bits at `offset` (lowest bit position, counted from the right) of the 128-bit value high:low.
  private static func bits(high: UInt64, low: UInt64, from offset: Int) -> UInt64 {
    var value: UInt64 = 0
    for bit in stride(from: offset + 4, through: offset, by: -1) {
      let set: Bool =
        if bit >= 128 { false } else if bit >= 64 { (high >> UInt64(bit - 64)) & 1 == 1 } else {
          (low >> UInt64(bit)) & 1 == 1
        }
      value = value << 1 | (set ? 1 : 0)
    }
    return value
  }
}
