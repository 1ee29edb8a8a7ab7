import Foundation
import Testing

@testable import RedressRemediation

/// The playbook fuzz target's seeds, through its entry point, in every test run (see Fuzz/README.md).
@Suite("Playbook fuzz seeds")
struct PlaybookFuzzSeedTests {
  @Test("the playbook target's seeds keep every invariant")
  func seeds() throws {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Fuzz/seeds/playbook")
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    #expect(!names.isEmpty)
    for name in names {
      try Data(contentsOf: directory.appendingPathComponent(name)).withUnsafeBytes { PlaybookFuzzing.run($0) }
    }
  }
}
