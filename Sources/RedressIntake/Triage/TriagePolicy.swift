/// The amounts triage compares against, per ISO 4217 currency, in the currency's minor unit.
public struct TriagePolicy: Sendable, Hashable {
  /// Yearly client value at or above which impact is at least medium / high.
  public struct ValueThresholds: Sendable, Hashable {
    /// Yearly value from which impact is at least medium.
    public var mediumMinor: Int64
    /// Yearly value from which impact is high.
    public var highMinor: Int64

    /// Thresholds in the currency's minor unit.
    public init(mediumMinor: Int64, highMinor: Int64) {
      self.mediumMinor = mediumMinor
      self.highMinor = highMinor
    }
  }

  /// A demand above this amount (strictly) is flagged `needs_review`. A demand in a currency with no
  /// policy amount is always flagged: nobody decided what is acceptable in it.
  public var reviewAboveMinor: [String: Int64]
  /// Yearly value thresholds for impact. A yearly value in a currency without thresholds does not change
  /// impact (the reasons say so).
  public var yearlyValueThresholds: [String: ValueThresholds]

  /// A policy with these amounts (minor units, by ISO 4217 code).
  public init(reviewAboveMinor: [String: Int64], yearlyValueThresholds: [String: ValueThresholds]) {
    self.reviewAboveMinor = reviewAboveMinor
    self.yearlyValueThresholds = yearlyValueThresholds
  }

  /// Review above 500.00 USD / EUR / GBP / CHF and 75,000 JPY; yearly value medium from 10,000.00 and
  /// high from 100,000.00 USD / EUR / GBP / CHF (1.5 M / 15 M JPY).
  public static var defaults: Self {
    let hundreds: [String: Int64] = ["USD": 50_000, "EUR": 50_000, "GBP": 50_000, "CHF": 50_000, "JPY": 75_000]
    let standard = ValueThresholds(mediumMinor: 1_000_000, highMinor: 10_000_000)
    return Self(
      reviewAboveMinor: hundreds,
      yearlyValueThresholds: [
        "USD": standard, "EUR": standard, "GBP": standard, "CHF": standard,
        "JPY": ValueThresholds(mediumMinor: 1_500_000, highMinor: 15_000_000),
      ]
    )
  }
}
