import Foundation
import RedressClient
import RedressSchemas
import SwiftProtobuf

/// Human tables and `--json` output.
enum Output {
  /// Writes a line to stdout unbuffered, so `watch` output reaches a pipe as it happens.
  static func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
  }

  /// Prints rows as columns aligned under their headers.
  static func table(_ headers: [String], _ rows: [[String]]) {
    var widths = headers.map(\.count)
    for row in rows {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], cell.count)
      }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { index, cell in
        index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
      }.joined(separator: "  ")
    }
    Self.emit(line(headers))
    for row in rows {
      Self.emit(line(row))
    }
  }

  /// Prints a message as proto3 JSON with the .proto field names.
  static func json(_ message: some SwiftProtobuf.Message) throws {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    Output.emit(try message.jsonString(options: options))
  }

  /// Prints `key: value` lines, skipping empty values.
  static func fields(_ pairs: [(String, String)]) {
    let width = pairs.map(\.0.count).max() ?? 0
    for (key, value) in pairs where !value.isEmpty {
      Output.emit("\(key.padding(toLength: width, withPad: " ", startingAt: 0))  \(value)")
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
