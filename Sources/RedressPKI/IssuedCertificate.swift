public import Foundation
public import X509
import SwiftASN1

/// A certificate with its private key.
public struct IssuedCertificate: Sendable {
  /// The certificate.
  public var certificate: Certificate
  /// The private key matching ``certificate``.
  public var privateKey: Certificate.PrivateKey

  /// Pairs a certificate with its key.
  public init(certificate: Certificate, privateKey: Certificate.PrivateKey) {
    self.certificate = certificate
    self.privateKey = privateKey
  }

  /// Reads a certificate and its key back from PEM (the key in PKCS#8 or SEC1 form).
  public init(certificatePEM: String, privateKeyPEM: String) throws {
    self.certificate = try Certificate(pemEncoded: certificatePEM)
    self.privateKey = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
  }

  /// The certificate in PEM.
  public func certificatePEM() throws -> String {
    try self.certificate.serializeAsPEM().pemString
  }

  /// The private key in PKCS#8 PEM.
  public func privateKeyPEM() throws -> String {
    try self.privateKey.serializeAsPEM().pemString
  }

  /// The certificate in DER.
  public func certificateDER() throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.serialize(self.certificate)
    return serializer.serializedBytes
  }

  /// The private key in DER (PKCS#8).
  public func privateKeyDER() throws -> [UInt8] {
    try self.privateKey.serializeAsPEM().derBytes
  }

  /// Writes the certificate and key as PEM files; the key file is created readable by its owner only
  /// (it never exists with wider permissions, not even briefly).
  public func write(certificateTo certificateURL: URL, privateKeyTo keyURL: URL) throws {
    try Data(self.certificatePEM().utf8).write(to: certificateURL, options: .atomic)
    try? FileManager.default.removeItem(at: keyURL)
    let created = FileManager.default.createFile(
      atPath: keyURL.path,
      contents: Data(try self.privateKeyPEM().utf8),
      attributes: [.posixPermissions: 0o600]
    )
    if !created {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: keyURL.path])
    }
  }
}
