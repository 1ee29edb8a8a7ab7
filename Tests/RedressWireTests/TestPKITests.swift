import Foundation
import SwiftASN1
import Testing
import X509

@Suite("Test PKI")
struct TestPKITests {
  let pki = TestPKI.shared

  @Test("the server leaf names localhost and 127.0.0.1 and is signed by the test CA")
  func serverLeafNamesAndIssuer() throws {
    let leaf = self.pki.server.x509
    let names = try #require(try leaf.extensions.subjectAlternativeNames)
    #expect(
      Array(names) == [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
    )
    #expect(leaf.issuer == self.pki.ca.x509.subject)
    #expect(self.pki.ca.x509.publicKey.isValidSignature(leaf.signature, for: leaf))
    #expect(try leaf.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))

    // The NIOSSL form handed to TLS must be the very same certificate.
    var serializer = DER.Serializer()
    try serializer.serialize(leaf)
    #expect(try self.pki.server.certificate.toDERBytes() == serializer.serializedBytes)
  }

  @Test("the client leaf carries the intake service's names")
  func clientLeafNames() throws {
    let leaf = self.pki.client.x509
    let names = try #require(try leaf.extensions.subjectAlternativeNames)
    #expect(Array(names) == [.dnsName("intake-service"), .uniformResourceIdentifier("spiffe://redress/intake")])
    #expect(leaf.subject.description.contains("CN=intake-service"))
    #expect(try leaf.extensions.extendedKeyUsage == ExtendedKeyUsage([.clientAuth]))
  }

  @Test("only in-date leaves of the test CA verify against it")
  func verification() async throws {
    var verifier = Verifier(rootCertificates: CertificateStore([self.pki.ca.x509])) {
      RFC5280Policy()
    }
    func verifies(_ identity: TestPKI.Identity) async -> Bool {
      let result = await verifier.validate(leaf: identity.x509, intermediates: CertificateStore())
      if case .validCertificate = result { return true }
      return false
    }

    #expect(await verifies(self.pki.server))
    #expect(await verifies(self.pki.client))
    #expect(!(await verifies(self.pki.expiredServer)))
    #expect(!(await verifies(self.pki.unknownCAServer)))
    #expect(self.pki.expiredServer.x509.notValidAfter < Date())
  }
}
