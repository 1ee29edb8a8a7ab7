import Foundation
import Testing

/// What the CLI prints can neither be crashed by the reader going away nor take over the terminal.
@Suite("redress output safety")
struct OutputSafetyTests {
  @Test("a reader that closed the pipe ends the command quietly with 0, not a trap (issue 11, finding 12)")
  func closedPipe() async throws {
    let process = Process()
    process.executableURL = Executables.url("redress")
    process.arguments = ["certs", "token", "--name", "pipe-reader"]
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    // The reading end is gone before the first write: every write fails with EPIPE.
    try out.fileHandleForReading.close()
    let (exits, exited) = AsyncStream.makeStream(of: (Int32, Process.TerminationReason).self)
    process.terminationHandler = { finished in
      exited.yield((finished.terminationStatus, finished.terminationReason))
      exited.finish()
    }
    try process.run()
    try out.fileHandleForWriting.close()
    var result: (Int32, Process.TerminationReason)?
    for await ended in exits { result = ended }
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(result?.1 == .exit, "ended by a signal: \(stderr)")
    #expect(result?.0 == 0)
    #expect(stderr.isEmpty)
  }

  @Test("control and bidi-override characters are printed as visible escapes (issue 11, finding 7)")
  func escapes() async throws {
    // An OSC 52 sequence writes the clipboard; a CR and a line break forge lines; U+202E reverses text.
    let hostile = "ops\u{1B}]52;c;cm0gLXJmIH4=\u{07}\r\nforged line\u{202E}gnp.exe"
    let result = try await Executables.run("redress", ["certs", "token", "--name", hostile])
    #expect(result.status == 0, "\(result.stderr)")
    let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("Give the token") })
    #expect(line.contains(#"ops\u{1B}]52;c;cm0gLXJmIH4=\u{7}\u{D}\u{A}forged line\u{202E}gnp.exe"#))
    #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D || $0.value == 0x202E })
    #expect(result.stdout.split(separator: "\n").count == 3)
  }
}
