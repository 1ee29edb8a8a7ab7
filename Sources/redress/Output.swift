import Foundation

#if canImport(Glibc)
import Glibc
#endif
import RedressClient
import RedressSchemas
import SwiftProtobuf

/// Human tables and `--json` output.
enum Output {
  /// Writes a line to stdout unbuffered, so `watch` output reaches a pipe as it happens. Control and
  /// bidi-override characters in it are escaped (``terminalSafe(_:)``): text from the services is never
  /// interpreted by the terminal.
  static func emit(_ line: String) {
    Self.write(Self.terminalSafe(line) + "\n", to: STDOUT_FILENO)
  }

  /// Writes text the CLI composed itself, several lines at once; each line is still ``terminalSafe(_:)``.
  static func emitText(_ text: String) {
    Self.write(text.split(separator: "\n", omittingEmptySubsequences: false).map { Self.terminalSafe(String($0)) }.joined(separator: "\n") + "\n", to: STDOUT_FILENO)
  }

  /// Writes lines to stderr, each made ``terminalSafe(_:)``.
  static func error(_ lines: [String]) {
    Self.write(lines.map(Self.terminalSafe).joined(separator: "\n") + "\n", to: STDERR_FILENO)
  }

  /// Writes all of `text`, retrying short writes. A reader that went away (`redress … | head -1`) ends the
  /// process quietly with status 0, as Unix filters do; `FileHandle.write` would trap on EPIPE instead.
  private static func write(_ text: String, to descriptor: Int32) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
      if written >= 0 {
        bytes = bytes.dropFirst(written)
      } else if errno == EINTR || errno == EAGAIN {
        continue
      } else {
        // EPIPE (the reader closed) or any other failure of the output: nothing more can be said.
        exit(0)
      }
    }
  }

  /// `text` with every C0/C1 control character, DEL, and Unicode bidi control (overrides, embeddings,
  /// isolates, marks) replaced by a visible `\u{…}` escape, so ESC/OSC sequences, carriage returns and
  /// line breaks stored by a client cannot move the cursor, forge lines or write the clipboard.
  static func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: Self.isUnsafe) else { return text }
    var result = ""
    result.reserveCapacity(text.utf8.count + 16)
    for scalar in text.unicodeScalars {
      if Self.isUnsafe(scalar) {
        result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
      } else {
        result.unicodeScalars.append(scalar)
      }
    }
    return result
  }

  private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F: true
    case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
  }

  /// The lines of a free-text value as they are shown: tabs become spaces, CR LF and CR end lines, so a note
  /// that breaks lines is laid out on its own lines rather than escaped into one.
  static func lines(_ text: String) -> [String] {
    let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
      .replacingOccurrences(of: "\t", with: "    ")
    return normalized.split(separator: "\n", omittingEmptySubsequences: false).map { Self.terminalSafe(String($0)) }
  }

  /// Prints rows as columns aligned under their headers. A cell with several lines continues on the next
  /// lines in its own column, the other columns left blank.
  static func table(_ headers: [String], _ rows: [[String]]) {
    let split = rows.map { $0.map(Self.lines) }
    var widths = headers.map(\.count)
    for row in split {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], cell.map(\.count).max() ?? 0)
      }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { index, cell in
        index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
    }
    Self.emit(line(headers))
    for row in split {
      let height = row.map(\.count).max() ?? 1
      for lineIndex in 0..<height {
        Self.emit(line(row.map { lineIndex < $0.count ? $0[lineIndex] : "" }))
      }
    }
  }

  /// Prints a message as proto3 JSON with the .proto field names.
  static func json(_ message: some SwiftProtobuf.Message) throws {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    Output.emit(try message.jsonString(options: options))
  }

  /// Prints `key  value` lines, skipping empty values; a value of several lines continues indented under
  /// its first line.
  static func fields(_ pairs: [(String, String)]) {
    let width = pairs.map(\.0.count).max() ?? 0
    for (key, value) in pairs where !value.isEmpty {
      for (index, line) in Self.lines(value).enumerated() {
        let label = index == 0 ? key : ""
        Output.emit("\(label.padding(toLength: width, withPad: " ", startingAt: 0))  \(line)")
      }
    }
  }

  static func date(_ timestamp: Google_Protobuf_Timestamp) -> String {
    guard timestamp.seconds != 0 || timestamp.nanos != 0 else { return "" }
    return ISO8601DateFormatter().string(from: timestamp.date)
  }

  /// An enum case as the CLI spells it: `wrongItem` → `wrong-item`.
  static func name(_ value: some SwiftProtobuf.Enum) -> String {
    let text = String(describing: value)
    // SwiftProtobuf describes cases by their Swift name (wrongItem); turn camelCase into dashes.
    var result = ""
    for character in text {
      if character.isUppercase {
        result += "-" + character.lowercased()
      } else {
        result.append(character)
      }
    }
    return result
  }
}
