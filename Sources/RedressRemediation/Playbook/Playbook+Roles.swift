import RedressSchemas
import RedressService

extension Playbook {
  /// The roles that may take each action; docs/REMEDIATION.md has the same table.
  static func roles(for action: Redress_V1_ActRequest.OneOf_Action) -> (name: String, roles: [Role]) {
    switch action {
    case .investigate: ("investigate", [.operator])
    case .apologize: ("apologize", [.operator])
    case .offer: ("offer", [.operator])
    case .respond: ("respond", [.operator, .clientTool])
    case .compensate: ("compensate", [.operator])
    case .approve: ("approve", [.approver])
    case .fix(let fix):
      if case .clientConfirmed = fix.step {
        ("fix", [.operator, .clientTool])
      } else {
        ("fix", [.operator])
      }
    case .goodwill: ("goodwill", [.operator])
    case .followUp: ("follow-up", [.operator])
    case .learn: ("learn", [.operator])
    case .escalate: ("escalate", [.operator, .approver, .legal])
    case .decline: ("decline", [.operator])
    case .refer: ("refer", [.operator])
    case .skip: ("skip", [.operator])
    case .note: ("note", [.operator, .approver, .legal, .clientTool])
    case .legal: ("legal", [.legal])
    case .receipt: ("acknowledge receipt", [.operator])
    case .reinvestigate: ("re-investigate", [.operator])
    case .reject: ("reject compensation", [.approver])
    case .withdraw: ("withdraw compensation", [.operator])
    }
  }

  static func checkRoles(
    for action: Redress_V1_ActRequest.OneOf_Action,
    actor: Identity,
    remedy: Redress_V1_Remedy
  ) throws(PlaybookError) {
    let (name, roles) = Self.roles(for: action)
    guard roles.contains(where: actor.has) else {
      let needed = roles.map(\.rawValue).joined(separator: " or ")
      throw .denied("Identity '\(actor.name)' may not \(name): it needs the role \(needed).")
    }
    if case .note(let note) = action, note.internal, !actor.has(.operator), actor.has(.clientTool) {
      throw .denied("A client tool may add only notes the client can see: set internal to false.")
    }
  }

  /// A retried compensation or goodwill request with a key already in the ledger: the same item answers
  /// `unchanged`, a different item under the same key is refused.
  static func idempotentReplay(
    _ action: Redress_V1_ActRequest.OneOf_Action,
    remedy: Redress_V1_Remedy
  ) -> Result<Outcome, PlaybookError>? {
    let key: String
    let ledger: Redress_V1_Ledger
    let matches: (Redress_V1_LedgerItem) -> Bool
    switch action {
    case .compensate(let request) where !request.idempotencyKey.isEmpty:
      key = request.idempotencyKey
      ledger = remedy.compensation
      matches = { $0.kind == request.kind && $0.amount == request.amount && $0.description_p == request.description_p }
    case .goodwill(let goodwill):
      guard case .gesture(let gesture) = goodwill.kind, !gesture.idempotencyKey.isEmpty else { return nil }
      key = gesture.idempotencyKey
      ledger = remedy.goodwill
      matches = { $0.amount == gesture.value && $0.description_p == gesture.description_p }
    default:
      return nil
    }
    guard let item = ledger.items.first(where: { $0.idempotencyKey == key }) else { return nil }
    if matches(item) {
      return .success(.unchanged(remedy))
    }
    return .failure(
      .rule("Idempotency key '\(key)' was already used for item \(item.id) with different terms: use a new key for a new item.")
    )
  }
}
