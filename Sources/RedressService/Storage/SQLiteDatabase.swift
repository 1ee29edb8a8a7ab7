import Foundation
public import GRDB

/// Opens the SQLite databases the services keep their state in.
///
/// Every database is in WAL mode with `synchronous = FULL`: a transaction is on disk (fsync'd, WAL included)
/// before `write` returns, so a service answers an RPC only after its change would survive `kill -9` or a power
/// loss. Readers never block the writer.
public enum SQLiteDatabase {
  /// Opens (creating if needed) the database at `path`, creating its directory too.
  ///
  /// - Parameters:
  ///   - path: The database file.
  ///   - label: A name for GRDB's logs and errors.
  public static func open(at path: String, label: String) throws -> DatabasePool {
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var configuration = Configuration()
    configuration.label = label
    configuration.foreignKeysEnabled = true
    // Wait for a lock rather than fail: another process (a migration, the CLI reading) may hold it briefly.
    configuration.busyMode = .timeout(10)
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = FULL")
    }
    // DatabasePool puts the database in WAL mode.
    return try DatabasePool(path: path, configuration: configuration)
  }
}
