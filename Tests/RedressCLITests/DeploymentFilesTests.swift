import Foundation
import Testing
import Yams

/// Every flag a systemd unit or Kubernetes manifest passes must be one the binary's `--help` lists, so the
/// deployment files cannot drift from the executables.
@Suite("Deployment files")
struct DeploymentFilesTests {
  static let deployment = Executables.packageRoot.appendingPathComponent("Deployment")

  /// The `--flags` an executable's `--help` (or a subcommand's) lists.
  static func helpFlags(_ executable: String, subcommand: [String] = []) async throws -> Set<String> {
    let help = try await Executables.run(executable, subcommand + ["--help"])
    #expect(help.status == 0, "\(executable) --help failed: \(help.stderr)")
    let pattern = try Regex(#"--[a-z][a-z0-9-]*"#)
    return Set(help.stdout.matches(of: pattern).map { String(help.stdout[$0.range]) })
  }

  /// The `--flag` names in command-line words (`--port=7401` and `--port 7401` both give `--port`).
  static func flags(in words: [String]) -> [String] {
    words.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) }
  }

  static func files(_ folder: String, _ suffix: String) throws -> [URL] {
    let directory = self.deployment.appendingPathComponent(folder)
    return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
      .filter { $0.lastPathComponent.hasSuffix(suffix) }
      .sorted { $0.path < $1.path }
  }

  @Test("every flag in the systemd units is one the binary accepts")
  func systemdUnits() async throws {
    let units = try Self.files("systemd", ".service")
    #expect(units.count == 2)
    for unit in units {
      let text = try String(contentsOf: unit, encoding: .utf8)
      // Join continuation lines, then take ExecStart's words.
      let joined = text.replacingOccurrences(of: "\\\n", with: " ")
      let execStart = try #require(
        joined.split(separator: "\n").first { $0.hasPrefix("ExecStart=") },
        "\(unit.lastPathComponent) has no ExecStart"
      )
      let words = execStart.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
      let binary = try #require(words.first.map { URL(fileURLWithPath: $0).lastPathComponent })
      let known = try await Self.helpFlags(binary)
      let used = Self.flags(in: words)
      #expect(!used.isEmpty)
      for flag in used {
        #expect(known.contains(flag), "\(unit.lastPathComponent) passes \(flag), which \(binary) --help does not list")
      }
    }
  }

  @Test("every manifest parses, and every flag its containers and probes pass is one the binary accepts")
  func kubernetesManifests() async throws {
    let manifests = try Self.files("kubernetes", ".yaml")
    #expect(manifests.count == 4)
    for manifest in manifests {
      let text = try String(contentsOf: manifest, encoding: .utf8)
      let documents = try Array(Yams.load_all(yaml: text))
      let kinds = documents.compactMap { ($0 as? [String: Any])?["kind"] as? String }
      #expect(Set(kinds).isSuperset(of: ["Deployment", "Service", "Secret"]), "\(manifest.lastPathComponent): \(kinds)")
      var checkedCommands = 0
      for document in documents {
        guard let object = document as? [String: Any], object["kind"] as? String == "Deployment" else { continue }
        let spec = try #require((object["spec"] as? [String: Any])?["template"] as? [String: Any])
        let pod = try #require(spec["spec"] as? [String: Any])
        let containers = try #require(pod["containers"] as? [[String: Any]])
        for container in containers {
          let command = (container["command"] as? [String]) ?? []
          let args = (container["args"] as? [String]) ?? []
          let binary = try #require(command.first.map { URL(fileURLWithPath: $0).lastPathComponent })
          try await Self.expectKnown(binary, [], Self.flags(in: command + args), in: manifest)
          checkedCommands += 1
          let readiness = try #require(container["readinessProbe"] as? [String: Any], "a readiness probe is required")
          for probe in [readiness, container["livenessProbe"] as? [String: Any]].compactMap({ $0 }) {
            let words = try #require((probe["exec"] as? [String: Any])?["command"] as? [String])
            let probeBinary = try #require(words.first.map { URL(fileURLWithPath: $0).lastPathComponent })
            let subcommand = words.dropFirst().prefix { !$0.hasPrefix("-") }
            try await Self.expectKnown(probeBinary, Array(subcommand), Self.flags(in: words), in: manifest)
            #expect(subcommand.first == "health", "probes use the health check")
            checkedCommands += 1
          }
        }
      }
      #expect(checkedCommands >= 3, "\(manifest.lastPathComponent): a container and its two probes")
    }
  }

  static func expectKnown(_ binary: String, _ subcommand: [String], _ used: [String], in file: URL) async throws {
    let known = try await Self.helpFlags(binary, subcommand: subcommand)
    #expect(!used.isEmpty)
    for flag in used {
      #expect(
        known.contains(flag),
        "\(file.lastPathComponent) passes \(flag), which \(([binary] + subcommand).joined(separator: " ")) --help does not list"
      )
    }
  }

  @Test("the example configuration files are valid JSON")
  func exampleConfiguration() throws {
    for file in try Self.files("config", ".json") {
      let data = try Data(contentsOf: file)
      #expect(throws: Never.self, "\(file.lastPathComponent)") { try JSONSerialization.jsonObject(with: data) }
    }
  }
}
