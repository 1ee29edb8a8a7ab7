import Foundation
import RedressTestSupport

/// Finds and runs the package's built executables (`swift build` puts them next to the test bundle).
enum Executables {
  /// The build products directory: the one holding this test bundle, else `.build/debug` above this file.
  static let directory: URL = {
    let candidates = [
      Bundle.main.bundleURL.deletingLastPathComponent(),
      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
      URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug"),
    ]
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("redress").path) {
      return candidate
    }
    return candidates[candidates.count - 1]
  }()

  static func url(_ name: String) -> URL {
    self.directory.appendingPathComponent(name)
  }

  /// The root of the package (for Deployment/ and docs/).
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  struct Result: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// Runs `name` with `arguments` to completion, giving up after `timeout`.
  static func run(
    _ name: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    stdin: String? = nil,
    currentDirectory: URL? = nil,
    timeout: Duration = .seconds(60)
  ) async throws -> Result {
    try await Self.run(
      executable: Self.url(name), arguments, environment: environment, stdin: stdin, currentDirectory: currentDirectory,
      timeout: timeout)
  }

  /// Runs the program at `executable` (any path) to completion, giving up after `timeout`.
  static func run(
    executable: URL,
    _ arguments: [String],
    environment: [String: String] = [:],
    stdin: String? = nil,
    currentDirectory: URL? = nil,
    timeout: Duration = .seconds(60)
  ) async throws -> Result {
    let name = executable.lastPathComponent
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for key in env.keys where key.hasPrefix("REDRESS_") {
      env.removeValue(forKey: key)
    }
    env.merge(environment) { _, new in new }
    process.environment = env
    if let currentDirectory {
      process.currentDirectoryURL = currentDirectory
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    let (exits, exited) = AsyncStream.makeStream(of: Int32.self)
    process.terminationHandler = { finished in
      exited.yield(finished.terminationStatus)
      exited.finish()
    }
    try process.run()
    if let stdin {
      input.fileHandleForWriting.write(Data(stdin.utf8))
    }
    try input.fileHandleForWriting.close()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    async let stdoutData = Self.readAll(out.fileHandleForReading)
    async let stderrData = Self.readAll(err.fileHandleForReading)
    let status = try await withTimeout(timeout, "\(name) \(arguments.joined(separator: " "))", onTimeout: { process.terminate() }) {
      var status: Int32 = -1
      for await code in exits {
        status = code
      }
      return status
    }
    let stdoutText = String(decoding: await stdoutData, as: UTF8.self)
    let stderrText = String(decoding: await stderrData, as: UTF8.self)
    return Result(status: status, stdout: stdoutText, stderr: stderrText)
  }

  static func readAll(_ handle: FileHandle) async -> Data {
    await withCheckedContinuation { continuation in
      DispatchQueue.global().async {
        continuation.resume(returning: handle.readDataToEndOfFile())
      }
    }
  }

}
