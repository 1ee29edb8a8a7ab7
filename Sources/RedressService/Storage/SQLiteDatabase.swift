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
    // A directory made here is the owner's alone. One that exists is left as it is: it may be shared
    // (`/tmp`, a mount point), and its permissions are the operator's to set.
    try FileManager.default.createDirectory(
      at: directory,
      withIntermediateDirectories: true,
      attributes: [.posixPermissions: 0o700]
    )
    try Self.restrictToOwner(path)
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

  /// Makes the database and its WAL and shared-memory files readable and writable by the owner only (0600).
  /// An empty file is a valid empty database; SQLite gives the `-wal` and `-shm` files it creates later the
  /// main file's permissions.
  static func restrictToOwner(_ path: String) throws {
    let files = FileManager.default
    if !files.fileExists(atPath: path) {
      guard files.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
      }
    }
    for file in [path, path + "-wal", path + "-shm"] where files.fileExists(atPath: file) {
      try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
    }
  }
}
