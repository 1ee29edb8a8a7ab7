import Foundation

/// The named hex examples of docs/PROTOCOL.md, read at test time so the specification and the
/// codec cannot drift apart.
///
/// A block is a line `<!-- hex: NAME -->` immediately followed by a fenced block opened with
/// ```` ```hex ````, holding two-digit hex octets separated by white space; `#` starts a comment.
struct ProtocolDocument {
  /// What went wrong finding or parsing the document.
  struct ParseError: Error, CustomStringConvertible {
    var description: String
  }

  /// The octets of each block, by name.
  private(set) var blocks: [String: [UInt8]] = [:]
  /// The block names in document order.
  private(set) var names: [String] = []

  /// Reads docs/PROTOCOL.md from the package root, found by walking up from this source file.
  static func load(filePath: String = #filePath) throws -> ProtocolDocument {
    var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    while directory.path != "/" && !directory.path.isEmpty {
      if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
        let url = directory.appendingPathComponent("docs").appendingPathComponent("PROTOCOL.md")
        return try ProtocolDocument(markdown: String(contentsOf: url, encoding: .utf8))
      }
      directory.deleteLastPathComponent()
    }
    throw ParseError(description: "no Package.swift above \(filePath): cannot find docs/PROTOCOL.md")
  }

  /// Parses the blocks of `markdown`; every ```` ```hex ```` fence must carry a name.
  init(markdown: String) throws {
    let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    var index = 0
    while index < lines.count {
      let line = lines[index]
      if line == "```hex" {
        throw ParseError(description: "line \(index + 1): a ```hex block without a <!-- hex: NAME --> line before it")
      }
      guard line.hasPrefix("<!-- hex:"), line.hasSuffix("-->") else {
        index += 1
        continue
      }
      let name = line.dropFirst("<!-- hex:".count).dropLast("-->".count).trimmingCharacters(in: .whitespaces)
      guard !name.isEmpty, self.blocks[name] == nil else {
        throw ParseError(description: "line \(index + 1): hex block name '\(name)' is empty or used twice")
      }
      guard index + 1 < lines.count, lines[index + 1] == "```hex" else {
        throw ParseError(description: "line \(index + 1): '\(name)' is not followed by a ```hex line")
      }
      var octets: [UInt8] = []
      index += 2
      while index < lines.count, lines[index] != "```" {
        let content = lines[index].split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        for token in content.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
          guard token.count == 2, let octet = UInt8(token, radix: 16) else {
            throw ParseError(description: "line \(index + 1): '\(token)' in block '\(name)' is not a two-digit hex octet")
          }
          octets.append(octet)
        }
        index += 1
      }
      guard index < lines.count else {
        throw ParseError(description: "hex block '\(name)' is never closed")
      }
      guard !octets.isEmpty else {
        throw ParseError(description: "hex block '\(name)' is empty")
      }
      self.blocks[name] = octets
      self.names.append(name)
      index += 1
    }
  }

  /// The octets of the block called `name`.
  func octets(_ name: String) throws -> [UInt8] {
    guard let octets = self.blocks[name] else {
      throw ParseError(description: "docs/PROTOCOL.md has no hex block '\(name)'")
    }
    return octets
  }
}
