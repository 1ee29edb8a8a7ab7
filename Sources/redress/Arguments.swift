import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas
import SwiftProtobuf

/// Command-line spellings of the API's enums. Each maps to exactly one proto value.
enum CategoryArgument: String, CaseIterable, ExpressibleByArgument {
  case wrongItem = "wrong-item", lateDelivery = "late-delivery", billingError = "billing-error"
  case defectiveProduct = "defective-product", serviceFailure = "service-failure"
  case contentRights = "content-rights", communication, other

  var proto: Redress_V1_Category {
    switch self {
    case .wrongItem: .wrongItem
    case .lateDelivery: .lateDelivery
    case .billingError: .billingError
    case .defectiveProduct: .defectiveProduct
    case .serviceFailure: .serviceFailure
    case .contentRights: .contentRights
    case .communication: .communication
    case .other: .other
    }
  }
}

enum ChannelArgument: String, CaseIterable, ExpressibleByArgument {
  case email, phone, chat, publicSocial = "public-social", inPerson = "in-person", legalNotice = "legal-notice"

  var proto: Redress_V1_Channel {
    switch self {
    case .email: .email
    case .phone: .phone
    case .chat: .chat
    case .publicSocial: .publicSocial
    case .inPerson: .inPerson
    case .legalNotice: .legalNotice
    }
  }
}

enum TierArgument: String, CaseIterable, ExpressibleByArgument {
  case standard, premium, enterprise, strategic

  var proto: Redress_V1_AccountTier {
    switch self {
    case .standard: .standard
    case .premium: .premium
    case .enterprise: .enterprise
    case .strategic: .strategic
    }
  }
}

enum PriorityArgument: String, CaseIterable, ExpressibleByArgument {
  case p1, p2, p3, p4

  var proto: Redress_V1_Priority {
    switch self {
    case .p1: .p1
    case .p2: .p2
    case .p3: .p3
    case .p4: .p4
    }
  }
}

enum IncidentStatusArgument: String, CaseIterable, ExpressibleByArgument {
  case awaitingRemediation = "awaiting-remediation", inRemediation = "in-remediation"

  var proto: Redress_V1_IncidentStatus {
    switch self {
    case .awaitingRemediation: .awaitingRemediation
    case .inRemediation: .inRemediation
    }
  }
}

/// An amount like `120.50 USD`.
struct MoneyArgument: ExpressibleByArgument {
  var proto: Redress_V1_Money

  init?(argument: String) {
    guard let money = Redress_V1_Money(parsing: argument) else { return nil }
    self.proto = money
  }

  static var defaultCompletionKind: CompletionKind { .default }
}

/// An ISO 8601 date-time like `2026-11-20T14:30:00Z`.
struct TimestampArgument: ExpressibleByArgument {
  var proto: Google_Protobuf_Timestamp

  init?(argument: String) {
    let formatter = ISO8601DateFormatter()
    guard let date = formatter.date(from: argument) else { return nil }
    self.proto = Google_Protobuf_Timestamp(date: date)
  }
}
