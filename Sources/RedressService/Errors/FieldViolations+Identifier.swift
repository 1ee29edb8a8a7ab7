extension FieldViolations {
  /// The longest identifier any RPC accepts (incident, remedy and item ids), in bytes.
  public static let maxIdentifierBytes = 128
  /// The most values a repeated filter (statuses, stages, priorities, categories) may list.
  public static let maxFilterValues = 16

  /// Checks an identifier a caller names (`incident_id`, `remedy_id`, ...): present when `required`, at most
  /// ``maxIdentifierBytes``, and only `A-Z a-z 0-9 . _ : -`, so it can be echoed in an answer safely.
  public mutating func checkIdentifier(_ value: String, _ field: String, required: Bool = true) {
    if value.isEmpty {
      if required { self.add(field, "is required") }
    } else if value.utf8.count > Self.maxIdentifierBytes {
      self.add(field, "must be at most \(Self.maxIdentifierBytes) bytes (got \(value.utf8.count))")
    } else if !value.utf8.allSatisfy(Self.isIdentifierByte) {
      self.add(field, "must be 1-\(Self.maxIdentifierBytes) characters of A-Z a-z 0-9 . _ : -")
    }
  }

  /// Checks a repeated filter lists at most ``maxFilterValues`` values.
  public mutating func checkFilterCount(_ count: Int, _ field: String) {
    if count > Self.maxFilterValues {
      self.add(field, "lists \(count) values; at most \(Self.maxFilterValues)")
    }
  }

  /// Checks a free-text filter: at most `maxBytes` and one line.
  public mutating func checkFilterText(_ value: String, _ field: String, maxBytes: Int) {
    if value.utf8.count > maxBytes {
      self.add(field, "must be at most \(maxBytes) bytes (got \(value.utf8.count))")
    } else {
      self.checkCharacters(value, field, .line)
    }
  }

  private static func isIdentifierByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
      true
    default:
      false
    }
  }
}
