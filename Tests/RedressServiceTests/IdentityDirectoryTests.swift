import Foundation
import Testing

@testable import RedressService

@Suite("Identity directory")
struct IdentityDirectoryTests {
  let directory: IdentityDirectory

  init() throws {
    self.directory = try IdentityDirectory(entries: [
      .init(
        name: "intake-service",
        tenant: "acme",
        roles: [.service],
        certificateNames: ["intake-service", "spiffe://redress/intake"]
      ),
      .init(
        name: "support-console",
        tenant: "acme",
        roles: [.submit, .read],
        tokenSHA256: [IdentityDirectory.digest(ofToken: "s3cret-token")]
      ),
    ])
  }

  @Test("a token authenticates as the identity whose digest it matches")
  func tokenMatches() {
    #expect(self.directory.identity(bearerToken: "s3cret-token")?.name == "support-console")
    #expect(self.directory.identity(bearerToken: "s3cret-tokeN") == nil)
    #expect(self.directory.identity(bearerToken: "") == nil)
  }

  @Test("a certificate authenticates by common name or URI SAN")
  func certificateMatches() {
    #expect(self.directory.identity(certificateCommonName: "intake-service", uris: [])?.name == "intake-service")
    #expect(
      self.directory.identity(certificateCommonName: "someone-else", uris: ["spiffe://redress/intake"])?.name
        == "intake-service"
    )
    #expect(self.directory.identity(certificateCommonName: "someone-else", uris: []) == nil)
  }

  @Test("configuration mistakes are refused with a message naming the entry")
  func badConfiguration() {
    #expect(throws: IdentityDirectory.ConfigurationError.self) {
      try IdentityDirectory(entries: [.init(name: "a", tenant: "", roles: [.read])])
    }
    #expect(throws: IdentityDirectory.ConfigurationError.self) {
      try IdentityDirectory(entries: [.init(name: "a", tenant: "t", roles: [Role(rawValue: "root")])])
    }
    #expect(throws: IdentityDirectory.ConfigurationError.self) {
      try IdentityDirectory(entries: [.init(name: "a", tenant: "t", roles: [.read], tokenSHA256: ["abc"])])
    }
    #expect(throws: IdentityDirectory.ConfigurationError.self) {
      try IdentityDirectory(entries: [
        .init(name: "a", tenant: "t", roles: [.read], certificateNames: ["x"]),
        .init(name: "b", tenant: "t", roles: [.read], certificateNames: ["x"]),
      ])
    }
    // Issue 11, finding 11: a service identity proves itself with a client certificate, never a token.
    let serviceWithToken = #expect(throws: IdentityDirectory.ConfigurationError.self) {
      try IdentityDirectory(entries: [
        .init(name: "intake", tenant: "t", roles: [.service], tokenSHA256: [IdentityDirectory.digest(ofToken: "t")])
      ])
    }
    #expect(serviceWithToken?.description.contains("client certificates only") == true)
  }

  @Test("constant-time comparison tells equal from unequal digests")
  func constantTime() {
    #expect(IdentityDirectory.constantTimeEquals([1, 2, 3], [1, 2, 3]))
    #expect(!IdentityDirectory.constantTimeEquals([1, 2, 3], [1, 2, 4]))
    #expect(!IdentityDirectory.constantTimeEquals([1, 2, 3], [1, 2]))
  }
}
