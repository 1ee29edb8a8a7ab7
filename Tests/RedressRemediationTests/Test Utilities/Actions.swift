import Foundation
import GRPCCore
import GRPCProtobuf
import RedressSchemas
import SwiftProtobuf
import Testing

typealias Action = Redress_V1_ActRequest.OneOf_Action

/// Incidents as intake would hand them over.
enum Incidents {
  static func make(
    id: String = "inc_\(UUID().uuidString)",
    tenant: String = "acme",
    priority: Redress_V1_Priority = .p2,
    channel: Redress_V1_Channel = .email,
    currency: String = "USD",
    customer: String = "cust-7",
    groupRoot: String = ""
  ) -> Redress_V1_Incident {
    .with {
      $0.id = id
      $0.tenant = tenant
      $0.groupRootID = groupRoot
      $0.reportedBy = "tool-a"
      $0.report = .with {
        $0.customer = .with {
          $0.id = customer
          $0.name = "Northwind"
          $0.tier = .premium
        }
        $0.title = "Wrong item shipped"
        $0.description_p = "Ordered blue, got red."
        $0.category = .wrongItem
        $0.channel = channel
        $0.demand = .with {
          $0.text = "Send the right one"
          $0.amount = .with {
            $0.currency = currency
            $0.amountMinor = 5_000
          }
        }
      }
      $0.triage = .with { $0.priority = priority }
      $0.status = .awaitingRemediation
    }
  }
}

/// Playbook actions with sensible test values.
enum Do {
  static func investigate(
    _ verdict: Redress_V1_Verdict = .legitimate,
    thirdParty: String = "",
    legalOwner: String = "",
    fingerprint: String = "",
    forGroup: Bool = false
  ) -> Action {
    .investigate(.with {
      $0.forGroup = forGroup
      $0.rootCause = "The label printer swapped two SKUs."
      $0.extent = .with {
        $0.clientsAffected = 3
        $0.ordersAffected = 4
        $0.costEstimate = .with {
          $0.currency = "USD"
          $0.amountMinor = 12_000
        }
      }
      $0.verdict = verdict
      $0.policyClause = "returns-4.2"
      $0.thirdParty = thirdParty
      $0.legalOwner = legalOwner
      $0.notes = "internal: warehouse B night shift"
      $0.fingerprint = fingerprint
    })
  }

  static func apologize(_ channel: Redress_V1_Channel = .phone) -> Action {
    .apologize(.with {
      $0.channel = channel
      $0.message = "We are sorry: we sent the wrong item."
    })
  }

  static func receipt(
    _ channel: Redress_V1_Channel = .email,
    privately privateChannel: Redress_V1_Channel = .unspecified
  ) -> Action {
    .receipt(.with {
      $0.channel = channel
      $0.message = "We hear you and we are on it; we will come back to you today."
      $0.privateChannel = privateChannel
    })
  }

  static func reinvestigate(_ reason: String, as investigation: Action) -> Action {
    guard case .investigate(let request) = investigation else { preconditionFailure("pass Do.investigate(...)") }
    return .reinvestigate(.with {
      $0.reason = reason
      $0.investigation = request
    })
  }

  static func reject(_ item: String, _ reason: String = "Not what we agreed.") -> Action {
    .reject(.with {
      $0.itemID = item
      $0.reason = reason
    })
  }

  static func withdraw(_ item: String, _ reason: String = "Requested by mistake.") -> Action {
    .withdraw(.with {
      $0.itemID = item
      $0.reason = reason
    })
  }

  static func offer(compensation: [Int64] = [3_000], goodwill: String = "10% off next order", currency: String = "USD") -> Action {
    .offer(.with {
      $0.fix = "Ship the right item overnight at our cost."
      $0.compensation = compensation.map { amount in
        .with {
          $0.kind = .invoiceCredit
          $0.amount = .with {
            $0.currency = currency
            $0.amountMinor = amount
          }
          $0.description_p = "Credit on next invoice"
        }
      }
      $0.goodwill = goodwill
    })
  }

  static func respond(_ round: Int32, _ answer: Redress_V1_OfferAnswer, reason: String = "", counter: String = "") -> Action {
    .respond(.with {
      $0.round = round
      $0.answer = answer
      $0.reason = reason
      $0.counterTerms = counter
    })
  }

  static func compensate(
    _ amount: Int64,
    key: String,
    kind: Redress_V1_CompensationKind = .invoiceCredit,
    currency: String = "USD",
    offTerms reason: String = ""
  ) -> Action {
    .compensate(.with {
      $0.kind = kind
      $0.offTermsReason = reason
      $0.amount = .with {
        $0.currency = currency
        $0.amountMinor = amount
      }
      $0.description_p = "Credit on next invoice"
      $0.idempotencyKey = key
    })
  }

  static func approve(_ item: String) -> Action {
    .approve(.with { $0.itemID = item })
  }

  static func assignFix(owner: String = "Sam Rivera", due: Date) -> Action {
    .fix(.with {
      $0.assign = .with {
        $0.owner = owner
        $0.dueAt = Google_Protobuf_Timestamp(date: due)
        $0.description_p = "Overnight replacement"
      }
    })
  }

  static let fixDone: Action = .fix(.with { $0.done = .with { $0.notes = "shipped" } })
  static let fixVerified: Action = .fix(.with { $0.verified = .with { $0.notes = "tracking shows delivered" } })
  static let fixConfirmed: Action = .fix(.with { $0.clientConfirmed = .with { $0.notes = "client has it" } })

  static func goodwill(_ value: Int64 = 2_000, key: String = "gw-1") -> Action {
    .goodwill(.with {
      $0.gesture = .with {
        $0.description_p = "Free gift wrapping for a year"
        $0.value = .with {
          $0.currency = "USD"
          $0.amountMinor = value
        }
        $0.idempotencyKey = key
      }
    })
  }

  static func skipGoodwill(_ reason: String) -> Action {
    .goodwill(.with { $0.skipReason = reason })
  }

  static func followUp(_ outcome: Redress_V1_FollowUpOutcome, medium: Redress_V1_ContactMedium = .call, reason: String = "") -> Action {
    .followUp(.with {
      $0.medium = medium
      $0.mediumReason = reason
      $0.outcome = outcome
      $0.notes = "spoke to the buyer"
    })
  }

  static func learn(fingerprint: String = "warehouse:label-printer:sku-swap") -> Action {
    .learn(.with {
      $0.lesson = "Label printers need a SKU check."
      $0.preventionAction = "Scan-to-verify at packing."
      $0.preventionOwner = "Dana Ortiz"
      $0.fingerprint = fingerprint
    })
  }

  static func escalate(_ reason: String) -> Action { .escalate(.with { $0.reason = reason }) }

  static func decline(_ reason: String = "Outside the 30-day return window.") -> Action {
    .decline(.with { $0.reason = reason })
  }

  static func refer(_ party: String = "", notes: String = "", closed: Bool = false) -> Action {
    .refer(.with {
      $0.thirdParty = party
      $0.notes = notes
      $0.closed = closed
    })
  }

  static func legal(_ status: String, closed: Bool = false) -> Action {
    .legal(.with {
      $0.status = status
      $0.closed = closed
    })
  }

  static func skip(_ stage: Redress_V1_Stage, _ reason: String) -> Action {
    .skip(.with {
      $0.stage = stage
      $0.reason = reason
    })
  }

  static func note(_ text: String, internal isInternal: Bool) -> Action {
    .note(.with {
      $0.text = text
      $0.internal = isInternal
    })
  }
}

/// Runs `body`, expecting an RPC error with `code`; returns it for further checks.
@discardableResult
func expectError(
  _ code: RPCError.Code,
  containing text: String? = nil,
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () async throws -> some Sendable
) async -> RPCError? {
  do {
    let value = try await body()
    Issue.record("expected \(code), got a value: \(value)", sourceLocation: sourceLocation)
    return nil
  } catch let error as RPCError {
    #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
    if let text {
      #expect(error.message.contains(text), "message: \(error.message)", sourceLocation: sourceLocation)
    }
    return error
  } catch {
    Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

extension Redress_V1_Remedy {
  func stage(_ stage: Redress_V1_Stage) -> Redress_V1_StageProgress {
    self.stages.first { $0.stage == stage }!
  }
}
