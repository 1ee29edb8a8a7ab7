import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas

/// What every playbook action takes: the remedy, the version the caller saw, and output format.
struct RemedyTarget: ParsableArguments {
  @Argument(help: "The remedy id.") var remedyID: String
  @Option(
    name: .customLong("expected-version"),
    help: "The version you last saw; the action is refused if the remedy changed since. Without it, the current version is used."
  )
  var expectedVersion: Int64?
  @Flag(name: .customLong("json"), help: "Print the remedy after the action as JSON.") var json = false

  /// Applies `action` and prints the remedy's new state.
  func perform(_ connection: ConnectionOptions, _ action: Redress_V1_ActRequest.OneOf_Action) async throws {
    let configuration = try connection.clientConfiguration()
    try await Failure.reporting {
      let remedy = try await withRedressClient(configuration: configuration) { redress in
        let version: Int64
        if let expectedVersion = self.expectedVersion {
          version = expectedVersion
        } else {
          version = try await redress.remedy(id: self.remedyID).version
        }
        return try await redress.act(on: self.remedyID, expectedVersion: version, action)
      }
      if self.json {
        try Output.json(remedy)
      } else {
        Output.emit("v\(remedy.version)  \(Output.name(remedy.status))  stage \(Output.name(remedy.currentStage))")
        if !remedy.nextAction.isEmpty {
          Output.emit("next: \(remedy.nextAction)")
        }
      }
    }
  }
}

enum VerdictArgument: String, CaseIterable, ExpressibleByArgument {
  case legitimate, thirdParty = "third-party", outsidePolicy = "outside-policy", badFaith = "bad-faith"

  var proto: Redress_V1_Verdict {
    switch self {
    case .legitimate: .legitimate
    case .thirdParty: .thirdParty
    case .outsidePolicy: .outsidePolicy
    case .badFaith: .badFaith
    }
  }
}

enum CompensationKindArgument: String, CaseIterable, ExpressibleByArgument {
  case invoiceCredit = "invoice-credit", refund, expeditedShipping = "expedited-shipping", feeWaiver = "fee-waiver"

  var proto: Redress_V1_CompensationKind {
    switch self {
    case .invoiceCredit: .invoiceCredit
    case .refund: .refund
    case .expeditedShipping: .expeditedShipping
    case .feeWaiver: .feeWaiver
    }
  }
}

enum AnswerArgument: String, CaseIterable, ExpressibleByArgument {
  case accepted, rejected, countered

  var proto: Redress_V1_OfferAnswer {
    switch self {
    case .accepted: .accepted
    case .rejected: .rejected
    case .countered: .countered
    }
  }
}

enum MediumArgument: String, CaseIterable, ExpressibleByArgument {
  case call, meeting, message

  var proto: Redress_V1_ContactMedium {
    switch self {
    case .call: .call
    case .meeting: .meeting
    case .message: .message
    }
  }
}

enum OutcomeArgument: String, CaseIterable, ExpressibleByArgument {
  case satisfied, unsatisfied, unreachable

  var proto: Redress_V1_FollowUpOutcome {
    switch self {
    case .satisfied: .satisfied
    case .unsatisfied: .unsatisfied
    case .unreachable: .unreachable
    }
  }
}

enum StatusArgument: String, CaseIterable, ExpressibleByArgument {
  case open, resolved, declined, referred, withLegal = "with-legal"

  var proto: Redress_V1_RemedyStatus {
    switch self {
    case .open: .open
    case .resolved: .resolved
    case .declined: .declined
    case .referred: .referred
    case .withLegal: .withLegal
    }
  }
}

enum StageArgument: String, CaseIterable, ExpressibleByArgument {
  case investigate, acknowledge, propose, compensate, fix, goodwill, followUp = "follow-up", learn

  var proto: Redress_V1_Stage {
    switch self {
    case .investigate: .investigate
    case .acknowledge: .acknowledge
    case .propose: .propose
    case .compensate: .compensate
    case .fix: .fix
    case .goodwill: .goodwill
    case .followUp: .followUp
    case .learn: .learn
    }
  }
}

/// A compensation term of an offer: `KIND:AMOUNT[:DESCRIPTION]`, e.g. `invoice-credit:120.00 USD:next invoice`.
struct TermArgument: ExpressibleByArgument {
  var proto: Redress_V1_CompensationTerm

  init?(argument: String) {
    let parts = argument.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 2, let kind = CompensationKindArgument(rawValue: parts[0]),
      let amount = Redress_V1_Money(parsing: parts[1])
    else { return nil }
    self.proto = .with {
      $0.kind = kind.proto
      $0.amount = amount
      if parts.count == 3 { $0.description_p = parts[2] }
    }
  }
}

/// The findings of an investigation, shared by `investigate` and `reinvestigate`.
struct InvestigationOptions: ParsableArguments {
  @Option(name: .customLong("root-cause")) var rootCause: String
  @Option var verdict: VerdictArgument
  @Option(name: .customLong("policy-clause"), help: "The policy clause the verdict rests on.") var policyClause: String?
  @Option(name: .customLong("clients-affected"), help: "Required: how many clients (at least 1).") var clientsAffected: Int32?
  @Option(name: .customLong("orders-affected"), help: "How many orders (0 when none are involved). [default: 0]") var ordersAffected: Int32?
  @Option(name: .customLong("cost-estimate"), help: "Required: what the mistake costs, e.g. '300.00 USD' (0 if nothing).") var costEstimate: MoneyArgument?
  @Option(name: .customLong("third-party"), help: "Who caused it (third-party verdict).") var thirdParty: String?
  @Option(name: .customLong("legal-owner"), help: "The person in legal who owns it (bad-faith verdict).") var legalOwner: String?
  @Option(help: "Root-cause fingerprint; flags a recurrence of an earlier lesson now.") var fingerprint: String?
  @Option var notes: String?

  var proto: Redress_V1_Investigate {
    .with {
      $0.rootCause = self.rootCause
      $0.verdict = self.verdict.proto
      $0.policyClause = self.policyClause ?? ""
      // Sent as given: the service names what is missing (clients, cost) in one answer.
      if self.clientsAffected != nil || self.ordersAffected != nil || self.costEstimate != nil {
        $0.extent = .with {
          if let value = self.clientsAffected { $0.clientsAffected = value }
          if let value = self.ordersAffected { $0.ordersAffected = value }
          if let value = self.costEstimate { $0.costEstimate = value.proto }
        }
      }
      $0.thirdParty = self.thirdParty ?? ""
      $0.legalOwner = self.legalOwner ?? ""
      $0.fingerprint = self.fingerprint ?? ""
      $0.notes = self.notes ?? ""
    }
  }
}

struct Investigate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Record the research: root cause, extent, and whether the claim is fair."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @OptionGroup var findings: InvestigationOptions
  @Flag(
    name: .customLong("for-group"),
    help: "Share it with the remedy's group: every client of the same mistake still being investigated gets it, and so do later ones."
  )
  var forGroup = false

  func run() async throws {
    var request = self.findings.proto
    request.forGroup = self.forGroup
    try await self.target.perform(self.connection, .investigate(request))
  }
}

struct Reinvestigate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Replace the verdict with new findings, with a reason (before any offer is accepted); the route follows the new verdict."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(help: "Why the earlier verdict is being replaced.") var reason: String
  @OptionGroup var findings: InvestigationOptions

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .reinvestigate(
        .with {
          $0.reason = self.reason
          $0.investigation = self.findings.proto
        }
      )
    )
  }
}

/// The channels an apology, or the rest of the conversation, may use: private ones.
enum PrivateChannelArgument: String, CaseIterable, ExpressibleByArgument {
  case email, phone, chat, inPerson = "in-person"

  var proto: Redress_V1_Channel {
    switch self {
    case .email: .email
    case .phone: .phone
    case .chat: .chat
    case .inPerson: .inPerson
    }
  }
}

/// Where the first answer may go: a private channel, or the public post the complaint was raised on.
enum ReplyChannelArgument: String, CaseIterable, ExpressibleByArgument {
  case email, phone, chat, inPerson = "in-person", publicSocial = "public-social"

  var proto: Redress_V1_Channel {
    switch self {
    case .email: .email
    case .phone: .phone
    case .chat: .chat
    case .inPerson: .inPerson
    case .publicSocial: .publicSocial
    }
  }
}

struct ReceiptCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "receipt",
    abstract: "Answer the client at once: we heard you and will take care of it (stops the acknowledgement clock).",
    discussion: "Comes before the research; the apology follows it. A complaint raised publicly may be answered on the public post, with --private-channel to continue on."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(help: "Where the client was answered.") var channel: ReplyChannelArgument
  @Option var message: String
  @Option(name: .customLong("private-channel"), help: "The private channel offered to continue on (required for a public complaint).")
  var privateChannel: PrivateChannelArgument?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .receipt(
        .with {
          $0.channel = self.channel.proto
          $0.message = self.message
          if let channel = self.privateChannel { $0.privateChannel = channel.proto }
        }
      )
    )
  }
}

struct Apologize: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Record the apology, made on a private channel.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(help: "The private channel used.") var channel: PrivateChannelArgument
  @Option var message: String?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .apologize(
        .with {
          $0.channel = self.channel.proto
          $0.message = self.message ?? ""
        }
      )
    )
  }
}

struct Offer: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Propose a fix, compensation and goodwill (a new round).")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(help: "The fix offered.") var fix: String
  @Option(name: .customLong("compensation"), help: ArgumentHelp("KIND:AMOUNT[:DESCRIPTION] (repeatable), e.g. 'invoice-credit:120.00 USD'.", valueName: "term"))
  var compensation: [TermArgument] = []
  @Option(help: "A goodwill gesture beyond the agreement.") var goodwill: String?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .offer(
        .with {
          $0.fix = self.fix
          $0.compensation = self.compensation.map(\.proto)
          $0.goodwill = self.goodwill ?? ""
        }
      )
    )
  }
}

struct Respond: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Record the client's answer to the current offer.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var answer: AnswerArgument
  @Option(help: "The offer round answered. [default: the latest]") var round: Int32?
  @Option(help: "Why the client rejected it.") var reason: String?
  @Option(name: .customLong("counter-terms"), help: "The client's counter-proposal.") var counterTerms: String?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .respond(
        .with {
          $0.answer = self.answer.proto
          $0.round = self.round ?? 0
          $0.reason = self.reason ?? ""
          $0.counterTerms = self.counterTerms ?? ""
        }
      )
    )
  }
}

struct Compensate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Request a compensation item; above the approval threshold it waits for an approver."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var kind: CompensationKindArgument
  @Option(help: "e.g. '120.00 USD'") var amount: MoneyArgument
  @Option var description: String?
  @Option(name: .customLong("idempotency-key"), help: "Requesting again with the same key returns the same item. [default: random]")
  var idempotencyKey: String?
  @Option(name: .customLong("off-terms-reason"), help: "Why this differs from the accepted offer (kind or amount); it then needs an approver.")
  var offTermsReason: String?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .compensate(
        .with {
          $0.kind = self.kind.proto
          $0.amount = self.amount.proto
          $0.description_p = self.description ?? ""
          $0.idempotencyKey = self.idempotencyKey ?? "ck_" + UUID().uuidString.lowercased()
          $0.offTermsReason = self.offTermsReason ?? ""
        }
      )
    )
  }
}

struct Reject: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Refuse a compensation item awaiting approval, with a reason (approver); its budget is freed."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(name: .customLong("item"), help: "The ledger item id.") var itemID: String
  @Option var reason: String

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .reject(
        .with {
          $0.itemID = self.itemID
          $0.reason = self.reason
        }
      )
    )
  }
}

struct Withdraw: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Withdraw a compensation item you requested that awaits approval; its budget is freed."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(name: .customLong("item"), help: "The ledger item id.") var itemID: String
  @Option var reason: String

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .withdraw(
        .with {
          $0.itemID = self.itemID
          $0.reason = self.reason
        }
      )
    )
  }
}

struct Approve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Approve a compensation item awaiting approval (an approver other than its requester)."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(name: .customLong("item"), help: "The ledger item id.") var itemID: String

  func run() async throws {
    try await self.target.perform(self.connection, .approve(.with { $0.itemID = self.itemID }))
  }
}

struct Fix: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Move the fix along: assign an owner, mark it done, verified, confirmed by the client.",
    subcommands: [Assign.self, Done.self, Verify.self, Confirm.self]
  )

  struct Assign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Name the person who owns the fix, and when it is due.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var target: RemedyTarget
    @Option(help: "A named person, not a team.") var owner: String
    @Option(help: ArgumentHelp("Due date, ISO 8601.", valueName: "time")) var due: TimestampArgument
    @Option var description: String?

    func run() async throws {
      try await self.target.perform(
        self.connection,
        .fix(
          .with {
            $0.assign = .with {
              $0.owner = self.owner
              $0.dueAt = self.due.proto
              $0.description_p = self.description ?? ""
            }
          }
        )
      )
    }
  }

  struct Done: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The owner finished the fix.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var target: RemedyTarget
    @Option var notes: String?

    func run() async throws {
      try await self.target.perform(self.connection, .fix(.with { $0.done = .with { $0.notes = self.notes ?? "" } }))
    }
  }

  struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Someone checked that the fix works.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var target: RemedyTarget
    @Option var notes: String?

    func run() async throws {
      try await self.target.perform(
        self.connection,
        .fix(.with { $0.verified = .with { $0.notes = self.notes ?? "" } })
      )
    }
  }

  struct Confirm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The client confirmed the fix.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var target: RemedyTarget
    @Option var notes: String?

    func run() async throws {
      try await self.target.perform(
        self.connection,
        .fix(.with { $0.clientConfirmed = .with { $0.notes = self.notes ?? "" } })
      )
    }
  }
}

struct GoodwillCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "goodwill",
    abstract: "Record a gesture beyond the agreement, or skip goodwill with a reason."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var description: String?
  @Option(help: "e.g. '50.00 USD'") var value: MoneyArgument?
  @Option(name: .customLong("skip-reason"), help: "Skip goodwill instead, for this reason.") var skipReason: String?

  func validate() throws {
    guard (self.skipReason == nil) != (self.description == nil) else {
      throw ValidationError("Give either --description (with --value) for a gesture, or --skip-reason.")
    }
  }

  func run() async throws {
    let goodwill: Redress_V1_Goodwill =
      if let skipReason = self.skipReason {
        .with { $0.skipReason = skipReason }
      } else {
        .with {
          $0.gesture = .with {
            $0.description_p = self.description ?? ""
            if let value = self.value { $0.value = value.proto }
            $0.idempotencyKey = "gk_" + UUID().uuidString.lowercased()
          }
        }
      }
    try await self.target.perform(self.connection, .goodwill(goodwill))
  }
}

struct FollowUpCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "follow-up",
    abstract: "Record the follow-up call after the fix: satisfied, unsatisfied (reopens) or unreachable."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var outcome: OutcomeArgument
  @Option(help: "call or meeting; message only with --medium-reason.") var medium: MediumArgument = .call
  @Option(name: .customLong("medium-reason"), help: "Why not a call or meeting.") var mediumReason: String?
  @Option var notes: String?

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .followUp(
        .with {
          $0.outcome = self.outcome.proto
          $0.medium = self.medium.proto
          $0.mediumReason = self.mediumReason ?? ""
          $0.notes = self.notes ?? ""
        }
      )
    )
  }
}

struct Learn: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Record the lesson so the mistake does not happen again.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var lesson: String
  @Option(name: .customLong("prevention"), help: "The action that prevents a recurrence.") var prevention: String
  @Option(name: .customLong("prevention-owner"), help: "Who owns the prevention action.") var preventionOwner: String
  @Option(help: "A stable key for the root cause, e.g. 'warehouse:label-printer'.") var fingerprint: String

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .learn(
        .with {
          $0.lesson = self.lesson
          $0.preventionAction = self.prevention
          $0.preventionOwner = self.preventionOwner
          $0.fingerprint = self.fingerprint
        }
      )
    )
  }
}

struct EscalateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "escalate", abstract: "Escalate the remedy.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var reason: String

  func run() async throws {
    try await self.target.perform(self.connection, .escalate(.with { $0.reason = self.reason }))
  }
}

struct DeclineCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "decline",
    abstract: "Decline a claim outside policy, politely and with a reason (the client is still acknowledged)."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var reason: String
  @Option(name: .customLong("policy-clause")) var policyClause: String

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .decline(
        .with {
          $0.reason = self.reason
          $0.policyClause = self.policyClause
        }
      )
    )
  }
}

struct ReferCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "refer",
    abstract: "Refer a problem caused by a third party to them (tracked)."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(name: .customLong("third-party")) var thirdParty: String
  @Option(help: "Progress notes (on a referred remedy).") var notes: String?
  @Flag(help: "The third party has dealt with it: stop tracking.") var closed = false

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .refer(
        .with {
          $0.thirdParty = self.thirdParty
          $0.notes = self.notes ?? ""
          $0.closed = self.closed
        }
      )
    )
  }
}

struct LegalCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "legal",
    abstract: "Update a remedy that is with legal (legal role only)."
  )
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option(help: "Where the matter stands.") var status: String
  @Flag(help: "Legal has closed the matter.") var closed = false

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .legal(
        .with {
          $0.status = self.status
          $0.closed = self.closed
        }
      )
    )
  }
}

struct Skip: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Skip a stage, with a reason.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var stage: StageArgument
  @Option var reason: String

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .skip(
        .with {
          $0.stage = self.stage.proto
          $0.reason = self.reason
        }
      )
    )
  }
}

struct Note: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Add a note to the remedy's timeline.")
  @OptionGroup var connection: ConnectionOptions
  @OptionGroup var target: RemedyTarget
  @Option var text: String
  @Flag(help: "Hide it from client tools.") var `internal` = false

  func run() async throws {
    try await self.target.perform(
      self.connection,
      .note(
        .with {
          $0.text = self.text
          $0.internal = self.internal
        }
      )
    )
  }
}
