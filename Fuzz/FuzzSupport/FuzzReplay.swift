import Foundation

/// Runs a fuzz entry point over saved inputs, for a build without libFuzzer: every file named on the command
/// line, and every file in every directory named (a corpus). Prints how many ran; a crash is the failure.
public enum FuzzReplay {
  public static func main(_ name: String, _ body: (UnsafeRawBufferPointer) -> Void) {
    let paths = CommandLine.arguments.dropFirst()
    guard !paths.isEmpty else {
      FileHandle.standardError.write(Data("usage: \(name) FILE_OR_DIRECTORY...\n".utf8))
      exit(64)
    }
    var count = 0
    for path in paths {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
      let files = isDirectory.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" }
        : [path]
      for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        data.withUnsafeBytes { body($0) }
        count += 1
      }
    }
    print("\(name): \(count) inputs replayed")
  }
}
