public import RedressSchemas

extension FieldViolations {
  /// Whether an amount may be zero.
  public enum AmountRule: Sendable {
    /// 1 ... ``Redress_V1_Money/maxAmountMinor``.
    case positive
    /// 0 ... ``Redress_V1_Money/maxAmountMinor``.
    case nonNegative
  }

  /// Checks that `money` has a real ISO 4217 currency (or exactly `currency`, when given) and an amount
  /// within `rule` and ``Redress_V1_Money/maxAmountMinor``, naming `field.currency` and
  /// `field.amount_minor` for what is wrong.
  public mutating func checkMoney(_ money: Redress_V1_Money, _ field: String, _ rule: AmountRule, currency: String? = nil) {
    if let currency {
      if money.currency != currency {
        self.add("\(field).currency", "must be the remedy's currency \(currency) (got '\(money.currency.prefix(16))')")
      }
    } else if !Redress_V1_Money.isCurrencyCode(money.currency) {
      self.add("\(field).currency", "must be the ISO 4217 code of a currency in use, like USD (got '\(money.currency.prefix(16))')")
    }
    let amount = money.amountMinor
    switch rule {
    case .positive where amount <= 0:
      self.add("\(field).amount_minor", "must be positive (in the currency's minor unit, e.g. cents)")
    case .nonNegative where amount < 0:
      self.add("\(field).amount_minor", "must not be negative")
    default:
      if amount > Redress_V1_Money.maxAmountMinor {
        self.add("\(field).amount_minor", "must be at most \(Redress_V1_Money.maxAmountMinor) minor units (got \(amount))")
      }
    }
  }
}
