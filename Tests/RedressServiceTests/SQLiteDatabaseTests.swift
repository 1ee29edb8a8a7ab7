import Foundation
import GRDB
import Testing

@testable import RedressService

@Suite("SQLite files")
struct SQLiteDatabaseTests {
  static func mode(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
  }

  @Test("a database is created 0600 (its WAL too) in a directory made 0700 (issue 11, finding 11)")
  func ownerOnly() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("redress-sqlite-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let path = root.appendingPathComponent("data/intake.sqlite").path
    let pool = try SQLiteDatabase.open(at: path, label: "test")
    try pool.write { db in
      try db.execute(sql: "CREATE TABLE t (x INTEGER)")
      try db.execute(sql: "INSERT INTO t VALUES (1)")
    }
    #expect(try Self.mode(root.appendingPathComponent("data").path) == 0o700)
    #expect(try Self.mode(path) == 0o600)
    #expect(try Self.mode(path + "-wal") == 0o600)
    #expect(try pool.read { try Int.fetchOne($0, sql: "SELECT x FROM t") } == 1)
  }

  @Test("an existing database made 0644 is tightened to 0600 when opened")
  func tightened() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("redress-sqlite-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let path = root.appendingPathComponent("old.sqlite").path
    #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]))
    _ = try SQLiteDatabase.open(at: path, label: "test")
    #expect(try Self.mode(path) == 0o600)
  }
}
