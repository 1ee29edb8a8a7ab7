import Foundation
import Testing

@testable import RedressWire

/// The fuzz targets' seeds (Fuzz/seeds/) run through the same entry points as libFuzzer, in every test run: a
/// seed that starts failing an invariant fails here too, without a fuzzer build.
@Suite("Fuzz seeds")
struct FuzzSeedTests {
  static let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fuzz/seeds")

  static func inputs(_ target: String) throws -> [Data] {
    let directory = Self.seeds.appendingPathComponent(target)
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    return try names.map { try Data(contentsOf: directory.appendingPathComponent($0)) }
  }

  @Test("every wire target's seeds pass its invariants", arguments: ["frames", "metadata", "decompress", "connection"])
  func wireSeeds(target: String) throws {
    let inputs = try Self.inputs(target)
    #expect(!inputs.isEmpty)
    let entry: (UnsafeRawBufferPointer) -> Void
    switch target {
    case "frames": entry = WireFuzzing.frames
    case "metadata": entry = WireFuzzing.metadata
    case "decompress": entry = WireFuzzing.decompress
    default: entry = WireFuzzing.serverConnection
    }
    for input in inputs {
      input.withUnsafeBytes { entry($0) }
    }
  }
}
