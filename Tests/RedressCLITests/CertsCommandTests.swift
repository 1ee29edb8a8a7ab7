import Foundation
import Testing

@Suite("redress certs and health")
struct CertsCommandTests {
  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("redress-certs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  static func permissions(_ url: URL) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
  }

  @Test("certs makes a CA and a leaf with owner-only keys, refuses to replace a CA, and mints tokens with digests")
  func certs() async throws {
    let directory = try Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }

    let ca = try await Executables.run("redress", ["certs", "ca", "--out", directory.path])
    #expect(ca.status == 0, "\(ca.stderr)")
    let caPEM = try String(contentsOf: directory.appendingPathComponent("ca.pem"), encoding: .utf8)
    #expect(caPEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
    #expect(try Self.permissions(directory.appendingPathComponent("ca-key.pem")) == 0o600)

    let again = try await Executables.run("redress", ["certs", "ca", "--out", directory.path])
    #expect(again.status != 0)
    #expect(again.stderr.contains("refusing to replace"))
    #expect(try String(contentsOf: directory.appendingPathComponent("ca.pem"), encoding: .utf8) == caPEM)

    let issued = try await Executables.run(
      "redress",
      ["certs", "issue", "--ca", directory.path, "--name", "intake-service", "--dns", "intake.internal",
       "--ip", "10.0.0.7", "--server", "--client", "--out", directory.path]
    )
    #expect(issued.status == 0, "\(issued.stderr)")
    #expect(try Self.permissions(directory.appendingPathComponent("intake-service-key.pem")) == 0o600)

    let noUsage = try await Executables.run(
      "redress", ["certs", "issue", "--ca", directory.path, "--name", "x", "--out", directory.path]
    )
    #expect(noUsage.status == 64, "a certificate must say what it is for")

    let token = try await Executables.run("redress", ["certs", "token", "--name", "support-console"])
    #expect(token.status == 0)
    let lines = token.stdout.split(separator: "\n")
    let digest = try #require(lines.first { $0.hasPrefix("token_sha256:") }).split(separator: " ").last ?? ""
    #expect(digest.count == 64 && digest.allSatisfy(\.isHexDigit))
  }

  @Test("health answers 0 for a serving service and 1 for an address nothing serves")
  func health() async throws {
    let stack = try await DevStackProcess()
    do {
      let profile = try JSONSerialization.jsonObject(with: Data(contentsOf: stack.profile)) as? [String: Any]
      let intake = try #require(profile?["intake"] as? String)
      let ca = try #require(profile?["ca"] as? String)
      let serving = try await Executables.run("redress", ["health", "--address", intake, "--ca", ca])
      #expect(serving.status == 0, "\(serving.stderr)")
      #expect(serving.stdout.contains("serving"))
      let nothing = try await Executables.run("redress", ["health", "--address", "127.0.0.1:1", "--ca", ca, "--timeout", "2"])
      #expect(nothing.status == 1)
    } catch {
      _ = try? await stack.stop()
      throw error
    }
    #expect(try await stack.stop() == 0)
  }
}
