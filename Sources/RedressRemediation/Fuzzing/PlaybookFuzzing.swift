import Foundation
import RedressSchemas
import RedressService

/// The entry point of the `fuzz-playbook` libFuzzer target (and its corpus replay): a remedy driven through
/// the playbook by an input-chosen sequence of actions, actors, amounts and clock steps. After every action
/// that is accepted the invariants must hold; an action that is refused must leave the remedy as it was.
package enum PlaybookFuzzing {
  static let people: [Identity] = [
    Identity(name: "olivia", tenant: "acme", roles: [.operator]),
    Identity(name: "alice", tenant: "acme", roles: [.operator, .approver]),
    Identity(name: "aaron", tenant: "acme", roles: [.approver]),
    Identity(name: "lena", tenant: "acme", roles: [.legal]),
    Identity(name: "portal", tenant: "acme", roles: [.clientTool]),
  ]

  package static func run(_ input: UnsafeRawBufferPointer) {
    var bytes = ByteReader(input)
    let playbook = Playbook(policy: .defaults)
    var now = Date(timeIntervalSince1970: 1_800_000_000)
    let incident = Redress_V1_Incident.with {
      $0.id = "inc_fuzz"
      $0.tenant = "acme"
      $0.report = .with {
        $0.customer = .with { $0.id = "c"; $0.name = "Client" }
        $0.title = "Mistake"
        $0.channel = bytes.byte() % 2 == 0 ? .email : .publicSocial
        $0.demand = .with { $0.amount = .with { $0.currency = "USD"; $0.amountMinor = 5_000 } }
      }
      $0.triage = .with { $0.priority = .p2 }
    }
    var remedy = playbook.open(incident: incident, id: "rem_fuzz", by: "intake", at: now)
    var steps = 0
    while !bytes.isEmpty && steps < 64 {
      steps += 1
      now += TimeInterval(bytes.byte()) * 3600
      remedy = playbook.checkDeadlines(of: remedy, at: now)?.0 ?? remedy
      let actor = Self.people[Int(bytes.byte()) % Self.people.count]
      let action = Self.action(&bytes, now: now)
      let before = remedy
      do {
        switch try playbook.apply(action, expectedVersion: remedy.version, to: remedy, by: actor, at: now) {
        case .changed(let after, let entry):
          precondition(after.version == before.version + 1, "version went \(before.version) → \(after.version)")
          precondition(entry.version == after.version && after.timeline.last == entry)
          remedy = after
        case .unchanged(let same):
          precondition(same == before, "an idempotent replay changed the remedy")
        }
      } catch {
        precondition(remedy == before)
      }
      for ledger in [remedy.compensation, remedy.goodwill] {
        precondition(ledger.issued.amountMinor <= ledger.committed.amountMinor, "issued > committed")
        precondition(ledger.committed.amountMinor <= ledger.budget.amountMinor, "committed > budget")
        precondition(ledger.issued.amountMinor >= 0)
      }
      _ = remedy.clientView
    }
  }

  /// An action with input-chosen fields; amounts are drawn from edges (0, 1, the bound, Int64.max) and bytes.
  static func action(_ bytes: inout ByteReader, now: Date) -> Redress_V1_ActRequest.OneOf_Action {
    let money = { (bytes: inout ByteReader) -> Redress_V1_Money in
      let amounts: [Int64] = [0, 1, 2_500, 10_000, 25_000, Redress_V1_Money.maxAmountMinor, .max, .min, -1]
      let pick = bytes.byte()
      let amount = pick < 200 ? amounts[Int(pick) % amounts.count] : bytes.int64()
      return .with { $0.currency = pick % 7 == 0 ? "EUR" : "USD"; $0.amountMinor = amount }
    }
    let text = { (bytes: inout ByteReader) -> String in bytes.text() }
    switch bytes.byte() % 20 {
    case 0:
      return .investigate(Self.investigation(&bytes, money: money))
    case 1: return .apologize(.with { $0.channel = bytes.byte() % 3 == 0 ? .publicSocial : .phone; $0.message = text(&bytes) })
    case 2:
      let count = Int(bytes.byte() % 4)
      return .offer(.with {
        $0.fix = text(&bytes)
        $0.compensation = (0..<count).map { _ in .with { $0.kind = .invoiceCredit; $0.amount = money(&bytes) } }
      })
    case 3:
      let answers: [Redress_V1_OfferAnswer] = [.accepted, .rejected, .countered]
      return .respond(.with {
        $0.answer = answers[Int(bytes.byte()) % 3]
        $0.reason = text(&bytes)
        $0.counterTerms = text(&bytes)
      })
    case 4:
      return .compensate(.with {
        $0.kind = bytes.byte() % 2 == 0 ? .refund : .invoiceCredit
        $0.amount = money(&bytes)
        $0.idempotencyKey = "k\(bytes.byte() % 4)"
        $0.offTermsReason = text(&bytes)
      })
    case 5: return .approve(.with { $0.itemID = "cmp-\(bytes.byte() % 4)" })
    case 6:
      return .fix(.with {
        switch bytes.byte() % 4 {
        case 0: $0.assign = .with { $0.owner = text(&bytes); $0.dueAt = .init(date: now + TimeInterval(bytes.byte()) * 3600 - 3600) }
        case 1: $0.done = .init()
        case 2: $0.verified = .init()
        default: $0.clientConfirmed = .init()
        }
      })
    case 7:
      return .goodwill(bytes.byte() % 3 == 0
        ? .with { $0.skipReason = text(&bytes) }
        : .with { $0.gesture = .with { $0.description_p = text(&bytes); $0.value = money(&bytes); $0.idempotencyKey = "g" } })
    case 8:
      let outcomes: [Redress_V1_FollowUpOutcome] = [.satisfied, .unsatisfied, .unreachable]
      return .followUp(.with { $0.medium = .call; $0.outcome = outcomes[Int(bytes.byte()) % 3] })
    case 9:
      return .learn(.with { $0.lesson = text(&bytes); $0.preventionAction = text(&bytes); $0.preventionOwner = "omar" })
    case 10: return .escalate(.with { $0.reason = text(&bytes) })
    case 11: return .decline(.with { $0.reason = text(&bytes); $0.policyClause = text(&bytes) })
    case 12: return .refer(.with { $0.thirdParty = text(&bytes); $0.notes = text(&bytes); $0.closed = bytes.byte() % 2 == 0 })
    case 13: return .legal(.with { $0.status = text(&bytes); $0.closed = bytes.byte() % 2 == 0 })
    case 14:
      return .skip(.with { $0.stage = Redress_V1_Stage(rawValue: Int(bytes.byte() % 10)) ?? .fix; $0.reason = text(&bytes) })
    case 15:
      let channels: [Redress_V1_Channel] = [.email, .publicSocial, .legalNotice, .unspecified, .chat]
      return .receipt(.with {
        $0.channel = channels[Int(bytes.byte()) % channels.count]
        $0.message = text(&bytes)
        $0.privateChannel = channels[Int(bytes.byte()) % channels.count]
      })
    case 16:
      return .reinvestigate(.with { $0.reason = text(&bytes); $0.investigation = Self.investigation(&bytes, money: money) })
    case 17: return .reject(.with { $0.itemID = "cmp-\(bytes.byte() % 4)"; $0.reason = text(&bytes) })
    case 18: return .withdraw(.with { $0.itemID = "cmp-\(bytes.byte() % 4)"; $0.reason = text(&bytes) })
    default: return .note(.with { $0.text = text(&bytes); $0.internal = bytes.byte() % 2 == 0 })
    }
  }

  static func investigation(
    _ bytes: inout ByteReader,
    money: (inout ByteReader) -> Redress_V1_Money
  ) -> Redress_V1_Investigate {
    let verdicts: [Redress_V1_Verdict] = [.legitimate, .thirdParty, .outsidePolicy, .badFaith, .unspecified]
    return .with {
      $0.rootCause = bytes.text()
      $0.verdict = verdicts[Int(bytes.byte()) % verdicts.count]
      $0.policyClause = bytes.text()
      $0.thirdParty = bytes.text()
      $0.legalOwner = bytes.byte() % 4 == 0 ? "legal team" : "lena"
      $0.extent = .with { $0.clientsAffected = Int32(bytes.byte()) - 8; $0.costEstimate = money(&bytes) }
    }
  }
}

/// Reads an input as a sequence of choices; past its end every read is zero.
struct ByteReader {
  private var bytes: Slice<UnsafeRawBufferPointer>

  init(_ input: UnsafeRawBufferPointer) { self.bytes = input[...] }

  var isEmpty: Bool { self.bytes.isEmpty }

  mutating func byte() -> UInt8 {
    self.bytes.popFirst() ?? 0
  }

  mutating func int64() -> Int64 {
    (0..<8).reduce(Int64(0)) { value, _ in (value << 8) | Int64(self.byte()) }
  }

  /// A short text: mostly plain words, sometimes with control or bidi characters, sometimes empty or long.
  mutating func text() -> String {
    switch self.byte() % 8 {
    case 0: return ""
    case 1: return "line\u{1B}]52;c;x\u{07}"
    case 2: return "right\u{202E}left"
    case 3: return String(repeating: "x", count: Int(self.byte()) * 40)
    default: return "words \(self.byte())"
    }
  }
}
