extension FieldViolations {
  /// What a stored text field may contain besides printable characters.
  public enum TextKind: Sendable {
    /// One line: no control character at all.
    case line
    /// Free text (descriptions, notes, messages): line feeds and tabs allowed, no other control character.
    case multiline
  }

  /// Checks that `text` has no control character other than those `kind` allows and no bidi embedding,
  /// override or isolate character (U+202A–U+202E, U+2066–U+2069): stored text is shown on terminals and
  /// screens, where such characters move the cursor, rewrite lines or reverse what is read.
  public mutating func checkCharacters(_ text: String, _ field: String, _ kind: TextKind) {
    if let problem = Self.characterProblem(in: text, kind) {
      self.add(field, problem)
    }
  }

  /// The rule `text` breaks, or `nil`.
  public static func characterProblem(in text: String, _ kind: TextKind) -> String? {
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x0A, 0x09:
        if kind == .line { return "must be one line: no line breaks or tabs" }
      case 0x00...0x1F, 0x7F...0x9F:
        return "must not contain control characters (found U+\(Self.hex(scalar)))"
      case 0x202A...0x202E, 0x2066...0x2069:
        return "must not contain bidirectional override characters (found U+\(Self.hex(scalar)))"
      default:
        continue
      }
    }
    return nil
  }

  private static func hex(_ scalar: Unicode.Scalar) -> String {
    let digits = String(scalar.value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
  }
}
