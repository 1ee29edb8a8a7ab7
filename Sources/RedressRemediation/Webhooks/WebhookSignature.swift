import Crypto
public import Foundation

/// The `Redress-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` with one `v1` per valid secret.
///
/// The HMAC key is the secret exactly as shown at creation (`whsec_…`, as UTF-8); the signed bytes are the
/// timestamp in decimal, a `.`, and the exact request body. A receiver accepts a delivery when any `v1` matches
/// one of its secrets and `t` is within its replay window (5 minutes is the documented default); during a
/// rotation the delivery carries a signature by the new and by the previous secret.
public enum WebhookSignature {
  /// The header's name.
  public static let headerName = "Redress-Signature"
  /// How far from now a receiver should accept `t` (docs/OPERATIONS.md).
  public static let replayWindow: TimeInterval = 300

  /// A new signing secret: `whsec_` and 32 random bytes in hex.
  public static func makeSecret() -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    return "whsec_" + bytes.map { String(format: "%02x", $0) }.joined()
  }

  /// The header value signing `body` at `timestamp` with each of `secrets`.
  public static func header(body: Data, timestamp: Int64, secrets: [String]) -> String {
    (["t=\(timestamp)"] + secrets.map { "v1=" + Self.hmac(body: body, timestamp: timestamp, secret: $0) })
      .joined(separator: ",")
  }

  /// Whether `header` carries a valid signature of `body` by `secret`, made within ``replayWindow`` of `now`
  /// (the check a Swift receiver makes; docs/OPERATIONS.md has it in Python too).
  public static func verify(header: String, body: Data, secret: String, now: Date, window: TimeInterval = Self.replayWindow) -> Bool {
    var timestamp: Int64?
    var signatures: [String] = []
    for part in header.split(separator: ",") {
      let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
      guard pair.count == 2 else { continue }
      if pair[0] == "t" { timestamp = Int64(pair[1]) }
      if pair[0] == "v1" { signatures.append(pair[1]) }
    }
    guard let timestamp, abs(now.timeIntervalSince1970 - Double(timestamp)) <= window else { return false }
    let expected = Data(Self.hmac(body: body, timestamp: timestamp, secret: secret).utf8)
    // Constant-time comparison of equal-length digests.
    return signatures.contains { candidate in
      let given = Data(candidate.utf8)
      guard given.count == expected.count else { return false }
      return zip(given, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
  }

  private static func hmac(body: Data, timestamp: Int64, secret: String) -> String {
    var signed = Data("\(timestamp).".utf8)
    signed.append(body)
    let code = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
    return code.map { String(format: "%02x", $0) }.joined()
  }
}
