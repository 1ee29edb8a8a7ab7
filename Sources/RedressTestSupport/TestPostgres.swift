public import Foundation

/// A real PostgreSQL server for tests (never a mock): the throw-away cluster `tools/postgres-for-tests.sh start`
/// starts (`.ci/run` does), named by `REDRESS_TEST_POSTGRES_URL`. Each test gets a database of its own.
///
/// Without a server the tests that need one are skipped with a loud message — unless
/// `REDRESS_REQUIRE_POSTGRES=1` (set by `.ci/run`), which makes that a failure.
///
/// The cluster is started by the script, not by the test process: a postmaster started from inside the test
/// process inherits its descriptors, and Foundation's `Process` then never reports `pg_ctl` as finished.
public enum TestPostgres {
  /// Why no server is available.
  public struct Unavailable: Error, CustomStringConvertible {
    public var description: String
  }

  /// Whether CI requires PostgreSQL tests to run.
  public static var isRequired: Bool { ProcessInfo.processInfo.environment["REDRESS_REQUIRE_POSTGRES"] == "1" }

  /// The server's URL (its `postgres` database).
  public static func serverURL() throws -> URLComponents {
    guard let text = ProcessInfo.processInfo.environment["REDRESS_TEST_POSTGRES_URL"], !text.isEmpty else {
      throw Unavailable(
        description: "REDRESS_TEST_POSTGRES_URL is not set: run `eval \"$(tools/postgres-for-tests.sh start)\"` first"
      )
    }
    guard let url = URLComponents(string: text), url.host != nil, url.port != nil, url.user != nil else {
      throw Unavailable(description: "REDRESS_TEST_POSTGRES_URL is not a postgres://USER@HOST:PORT/DB URL: \(text)")
    }
    return url
  }

  /// A new empty database on the server; its `postgres://` URL.
  public static func makeDatabase() async throws -> String {
    var url = try Self.serverURL()
    let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    let bin = ProcessInfo.processInfo.environment["REDRESS_POSTGRES_BIN"] ?? "/usr/lib/postgresql/15/bin"
    let (status, output) = try await Self.run([
      "\(bin)/createdb", "-h", url.host ?? "", "-p", "\(url.port ?? 5432)", "-U", url.user ?? "", String(name),
    ])
    guard status == 0 else { throw Unavailable(description: "createdb failed (\(status)): \(output)") }
    url.path = "/" + name
    return url.string ?? ""
  }

  /// Runs `body` with a fresh database URL; when there is no server, says so loudly and skips (or, when CI
  /// requires PostgreSQL, fails).
  public static func withDatabase(_ body: (String) async throws -> Void) async throws {
    let url: String
    do {
      url = try await Self.makeDatabase()
    } catch {
      let message = "PostgreSQL is not available, so this PostgreSQL test did not run: \(error)"
      if Self.isRequired { throw Unavailable(description: message) }
      FileHandle.standardError.write(Data("\n*** SKIPPED: \(message) ***\n\n".utf8))
      return
    }
    try await body(url)
  }

  /// Runs `command` to its end without blocking a thread.
  static func run(_ command: [String]) async throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
      process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
      do {
        try process.run()
      } catch {
        process.terminationHandler = nil
        continuation.resume(throwing: error)
      }
    }
    return (status, String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
  }
}

/// The store backends a parameterised suite runs against: `@Test(arguments: Backend.allCases)`.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
  case sqlite, postgres

  public var description: String { self.rawValue }

  /// Runs `body` with `nil` (SQLite: the test makes its own file) or the URL of a new, empty PostgreSQL
  /// database (skipped loudly without a server, or failing when CI requires PostgreSQL).
  public func withPostgresURL(_ body: (String?) async throws -> Void) async throws {
    switch self {
    case .sqlite: try await body(nil)
    case .postgres: try await TestPostgres.withDatabase { url in try await body(url) }
    }
  }
}
