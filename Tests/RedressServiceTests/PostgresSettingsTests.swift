import Foundation
import RedressService
import Testing

@Suite("PostgreSQL settings")
struct PostgresSettingsTests {
  @Test("a database URL parses; TLS verifies by default; the password is never in it nor printed")
  func parsing() throws {
    let settings = try PostgresSettings(url: "postgres://redress@db.internal:6432/remedies", password: "s3cret")
    #expect(settings.host == "db.internal" && settings.port == 6432 && settings.database == "remedies")
    #expect(settings.tlsMode == .verifyFull)
    #expect(!settings.description.contains("s3cret"))
    #expect(settings.description == "postgres://redress@db.internal:6432/remedies?sslmode=verify-full")
    let local = try PostgresSettings(url: "postgresql://app@127.0.0.1/app?sslmode=disable", password: nil)
    #expect(local.port == 5432 && local.tlsMode == .disable)
    for bad in [
      "postgres://app:hunter2@db/app",  // password in the URL
      "mysql://app@db/app", "postgres://db/app", "postgres://app@db/", "postgres://app@db/app?sslmode=maybe",
      "postgres://app@db/app?pool=3",
    ] {
      #expect(throws: ServiceSettings.SettingsError.self, "\(bad)") { try PostgresSettings(url: bad, password: nil) }
    }
    do {
      _ = try PostgresSettings(url: "postgres://app:hunter2@db/app", password: nil)
    } catch {
      #expect(!"\(error)".contains("hunter2"))
    }
  }
}
