// Hand-written (not generated): exact text conversions for Money shared by the services, the client and the CLI.
import Foundation

extension Redress_V1_Money {
  /// Digits after the decimal point for ISO 4217 currencies that do not use 2 (the rest use 2).
  static let minorUnitDigits: [String: Int] = [
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
  ]

  /// Parses `"120.50 USD"` or `"USD 120.50"` into minor units, exactly (no floating point).
  ///
  /// - Returns: `nil` if the text is not an amount and a three-letter currency code, or has more decimals
  ///   than the currency allows.
  public init?(parsing text: String) {
    let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    guard parts.count == 2 else { return nil }
    let (amountText, code) =
      parts[0].allSatisfy(\.isLetter) ? (parts[1], parts[0].uppercased()) : (parts[0], parts[1].uppercased())
    guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isLetter }) else { return nil }
    let digits = Self.minorUnitDigits[code] ?? 2
    let pieces = amountText.split(separator: ".", omittingEmptySubsequences: false)
    guard pieces.count <= 2, let whole = Int64(pieces[0]), whole >= 0 else { return nil }
    var fraction: Int64 = 0
    if pieces.count == 2 {
      let fractionText = pieces[1]
      guard fractionText.count <= digits, !fractionText.isEmpty, fractionText.allSatisfy(\.isNumber),
        let value = Int64(fractionText)
      else { return nil }
      fraction = value * Self.power(10, digits - fractionText.count)
    }
    let (scaled, overflow) = whole.multipliedReportingOverflow(by: Self.power(10, digits))
    guard !overflow else { return nil }
    self.init()
    self.currency = code
    self.amountMinor = scaled + fraction
  }

  /// `"120.50 USD"`.
  public var formatted: String {
    let digits = Self.minorUnitDigits[self.currency] ?? 2
    guard digits > 0 else { return "\(self.amountMinor) \(self.currency)" }
    let scale = Self.power(10, digits)
    let sign = self.amountMinor < 0 ? "-" : ""
    let magnitude = self.amountMinor.magnitude
    let fraction = String(magnitude % UInt64(scale))
    let padded = String(repeating: "0", count: digits - fraction.count) + fraction
    return "\(sign)\(magnitude / UInt64(scale)).\(padded) \(self.currency)"
  }

  private static func power(_ base: Int64, _ exponent: Int) -> Int64 {
    (0..<exponent).reduce(1) { result, _ in result * base }
  }
}
