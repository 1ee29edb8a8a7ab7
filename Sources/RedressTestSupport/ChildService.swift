public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A built service executable (`redress-intake`, `redress-remediation`) running as a child process, for crash,
/// shutdown and multi-replica tests.
///
/// `@unchecked Sendable`: the `Process` is configured and started in ``launch(executable:arguments:stderr:)``
/// and afterwards only signalled by pid; its termination is observed through `terminationHandler`.
public final class ChildService: @unchecked Sendable {
  private let process: Process
  private let exitStatus: AsyncStream<Int32>
  /// The port the child reported it listens on.
  public let port: Int

  private init(process: Process, exitStatus: AsyncStream<Int32>, port: Int) {
    self.process = process
    self.exitStatus = exitStatus
    self.port = port
  }

  /// Finds the executable `name` built next to the test bundle (`swift build --build-tests` builds it).
  public static func executable(_ name: String = "redress-intake") throws -> URL {
    // Linux: the test binary sits in the build directory; macOS: the .xctest bundle does.
    var candidates = [
      Bundle.main.bundleURL.appendingPathComponent(name),
      Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name),
    ]
    var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while directory.path != "/" {
      candidates.append(directory.appendingPathComponent(".build/debug/\(name)"))
      directory.deleteLastPathComponent()
    }
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
      throw TimedOut(what: "\(name) to exist: run `swift build` first (looked in \(candidates.map(\.path)))")
    }
    return found
  }

  /// Starts the child and returns once it printed its listening port.
  public static func launch(executable: URL, arguments: [String], stderr: URL) async throws -> ChildService {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let stdout = Pipe()
    process.standardOutput = stdout
    if !FileManager.default.fileExists(atPath: stderr.path) {
      _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
    }
    let errorLog = try FileHandle(forWritingTo: stderr)
    try errorLog.seekToEnd()
    process.standardError = errorLog

    let (exitStatus, exitContinuation) = AsyncStream.makeStream(of: Int32.self)
    process.terminationHandler = { process in
      exitContinuation.yield(process.terminationStatus)
      exitContinuation.finish()
    }
    let (lines, linesContinuation) = AsyncStream.makeStream(of: String.self)
    let pending = Mutex(Data())
    // A blocking read on a worker thread, not `readabilityHandler`: a dispatch source left registered on a
    // pipe whose descriptor is later closed crashes libdispatch (seen in a full-suite run).
    let handle = stdout.fileHandleForReading
    DispatchQueue.global().async {
      while true {
        let data = handle.availableData
        if data.isEmpty {
          linesContinuation.finish()
          return
        }
        let complete = pending.withLock { buffer -> [String] in
          buffer.append(data)
          var lines: [String] = []
          while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
            buffer.removeSubrange(buffer.startIndex...newline)
          }
          return lines
        }
        for line in complete { linesContinuation.yield(line) }
      }
    }
    try process.run()
    try? errorLog.close()

    let name = executable.lastPathComponent
    let prefix = "\(name) listening on port "
    let port = try await withTimeout(60, "\(name) to report its port") {
      for await line in lines where line.hasPrefix(prefix) {
        if let port = Int(line.dropFirst(prefix.count)) { return port }
      }
      throw TimedOut(what: "a port: \(name) exited first (see \(stderr.path))")
    }
    return ChildService(process: process, exitStatus: exitStatus, port: port)
  }

  /// Sends `signal` to the child.
  public func send(_ signal: Int32) {
    _ = kill(self.process.processIdentifier, signal)
  }

  /// Waits for the child to exit; returns its status (the signal number if it was killed by one).
  public func waitForExit() async throws -> Int32 {
    try await withTimeout(60, "the child service to exit") { [exitStatus] in
      for await status in exitStatus { return status }
      return -1
    }
  }
}
