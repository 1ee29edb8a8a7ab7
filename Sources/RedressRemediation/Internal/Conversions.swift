import Foundation
import RedressSchemas
import SwiftProtobuf

extension Duration {
  /// The duration in seconds, for `Date` arithmetic.
  var timeInterval: TimeInterval {
    let (seconds, attoseconds) = self.components
    return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
  }
}

extension Google_Protobuf_Timestamp {
  init(_ date: Date) {
    self.init(date: date)
  }
}

extension Redress_V1_Money {
  init(currency: String, minor: Int64) {
    self.init()
    self.currency = currency
    self.amountMinor = minor
  }

  /// `12.34 USD`: the one money format Redress prints (``Redress_V1_Money/formatted``).
  var text: String { self.formatted }
}

extension Date {
  /// ISO 8601 in UTC to the second, for messages.
  var iso8601: String {
    self.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted))
  }
}

extension Redress_V1_Stage {
  /// Lower-case name used in messages: "investigate", "follow-up".
  var name: String {
    switch self {
    case .investigate: "investigate"
    case .acknowledge: "acknowledge"
    case .propose: "propose"
    case .compensate: "compensate"
    case .fix: "fix"
    case .goodwill: "goodwill"
    case .followUp: "follow-up"
    case .learn: "learn"
    default: "unspecified"
    }
  }

  /// Every stage, in playbook order.
  static let ordered: [Redress_V1_Stage] = [
    .investigate, .acknowledge, .propose, .compensate, .fix, .goodwill, .followUp, .learn,
  ]
}

extension Redress_V1_Channel {
  var name: String {
    switch self {
    case .email: "email"
    case .phone: "phone"
    case .chat: "chat"
    case .publicSocial: "a public channel"
    case .inPerson: "in person"
    case .legalNotice: "a legal notice"
    default: "an unspecified channel"
    }
  }
}

extension Redress_V1_Verdict {
  var name: String {
    switch self {
    case .legitimate: "legitimate"
    case .thirdParty: "caused by a third party"
    case .outsidePolicy: "outside policy"
    case .badFaith: "bad faith"
    default: "unspecified"
    }
  }
}

extension Redress_V1_RemedyStatus {
  var name: String {
    switch self {
    case .open: "open"
    case .resolved: "resolved"
    case .declined: "declined"
    case .referred: "referred"
    case .withLegal: "with legal"
    default: "unspecified"
    }
  }
}
