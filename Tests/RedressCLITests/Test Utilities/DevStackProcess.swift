import Foundation
import RedressTestSupport

/// A `redress dev` child process on free ports under a temporary data directory.
final class DevStackProcess: @unchecked Sendable {
  // @unchecked: the Process and pipes are only touched from the test's task, before and after it runs.
  let dataDirectory: URL
  let profile: URL
  private let process: Process
  private let output: Pipe

  /// Starts the stack (with `extra` options for `redress dev`) and waits for its "ready" line; its logs (standard
  /// error) go to `logFile` if given, else nowhere.
  init(_ extra: [String] = [], logFile: URL? = nil) async throws {
    self.dataDirectory = FileManager.default.temporaryDirectory
      .appendingPathComponent("redress-cli-\(UUID().uuidString)", isDirectory: true)
    self.profile = self.dataDirectory.appendingPathComponent("client.json")
    self.process = Process()
    self.process.executableURL = Executables.url("redress")
    self.process.arguments = [
      "dev", "--data-dir", self.dataDirectory.path, "--intake-port", "0", "--remediation-port", "0",
      "--intake-grpc-port", "0", "--remediation-grpc-port", "0", "--intake-metrics-port", "0", "--remediation-metrics-port", "0",
    ] + (extra.contains("--log-level") ? [] : ["--log-level", "error"]) + extra
    self.output = Pipe()
    self.process.standardOutput = self.output
    if let logFile {
      guard FileManager.default.createFile(atPath: logFile.path, contents: nil) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logFile.path])
      }
      self.process.standardError = try FileHandle(forWritingTo: logFile)
    } else {
      self.process.standardError = FileHandle.nullDevice
    }
    try self.process.run()

    let handle = self.output.fileHandleForReading
    let ready = try await withTimeout(.seconds(60), "redress dev to print ready", onTimeout: { [process] in process.terminate() }) {
      await Self.waitForReadyLine(handle)
    }
    guard ready else {
      throw TimedOut(what: "redress dev exited before it was ready")
    }
  }

  /// Reads the child's output on a background thread until a line "ready" (true) or end of output (false).
  private static func waitForReadyLine(_ handle: FileHandle) async -> Bool {
    await withCheckedContinuation { continuation in
      DispatchQueue.global().async {
        var text = ""
        while true {
          let data = handle.availableData
          if data.isEmpty {
            continuation.resume(returning: false)
            return
          }
          text += String(decoding: data, as: UTF8.self)
          if text.split(separator: "\n").contains("ready") {
            continuation.resume(returning: true)
            return
          }
        }
      }
    }
  }

  /// Runs `redress` against this stack with its profile.
  func redress(_ arguments: [String], as identity: String? = nil, stdin: String? = nil) async throws -> Executables.Result {
    var words = arguments
    // Options go after the subcommand path; every command takes --profile and --as.
    words.append(contentsOf: ["--profile", self.profile.path])
    if let identity {
      words.append(contentsOf: ["--as", identity])
    }
    return try await Executables.run("redress", words, stdin: stdin)
  }

  /// Stops the stack with SIGINT, as Ctrl-C would, and returns its exit status.
  func stop() async throws -> Int32 {
    let process = self.process
    let (exits, exited) = AsyncStream.makeStream(of: Int32.self)
    process.terminationHandler = { finished in
      exited.yield(finished.terminationStatus)
      exited.finish()
    }
    if process.isRunning {
      process.interrupt()
    } else {
      exited.yield(process.terminationStatus)
      exited.finish()
    }
    let status = try await withTimeout(.seconds(30), "redress dev to stop", onTimeout: { process.terminate() }) {
      var status: Int32 = -1
      for await code in exits { status = code }
      return status
    }
    try? FileManager.default.removeItem(at: self.dataDirectory)
    return status
  }
}
