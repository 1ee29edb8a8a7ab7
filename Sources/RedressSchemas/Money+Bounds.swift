// Hand-written (not generated): the limits every service applies to Money, and checked sums.
import Foundation

extension Redress_V1_Money {
  /// The largest amount any request may carry, in minor units: 10^13 (100 billion in a two-decimal
  /// currency). Twenty such amounts still sum far below `Int64.max`, so no total of accepted amounts
  /// can overflow.
  public static let maxAmountMinor: Int64 = 10_000_000_000_000

  /// ISO 4217 codes of currencies in use, from ICU through Foundation: codes with no currency (`XXX`),
  /// for testing (`XTS`), metals and funds are not in it.
  public static let currencyCodes: Set<String> = Set(Locale.commonISOCurrencyCodes)

  /// Whether `code` is an ISO 4217 code of a currency in use (upper case, like `USD`).
  public static func isCurrencyCode(_ code: String) -> Bool {
    Self.currencyCodes.contains(code)
  }

  /// The sum of `amounts`, or `nil` if it overflows `Int64`.
  public static func sum(_ amounts: some Sequence<Int64>) -> Int64? {
    var total: Int64 = 0
    for amount in amounts {
      let (next, overflow) = total.addingReportingOverflow(amount)
      if overflow { return nil }
      total = next
    }
    return total
  }
}
