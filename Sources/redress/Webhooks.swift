import ArgumentParser
import Foundation
import RedressClient
import RedressSchemas

/// An event type as written on the command line: its dotted name (`remedy.stage_changed`).
struct EventTypeArgument: ExpressibleByArgument {
  let proto: Redress_V1_WebhookEventType

  init?(argument: String) {
    guard let type = Redress_V1_WebhookEventType(dottedName: argument), type != .test else { return nil }
    self.proto = type
  }

  static var allValueStrings: [String] { Redress_V1_WebhookEventType.subscribable.map(\.dottedName) }
}

enum DeliveryStateArgument: String, CaseIterable, ExpressibleByArgument {
  case pending, delivered, dead

  var proto: Redress_V1_WebhookDeliveryState {
    switch self {
    case .pending: .pending
    case .delivered: .delivered
    case .dead: .dead
    }
  }
}

struct Webhooks: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Manage the tenant's webhooks: where Redress posts events (the admin role).",
    discussion: """
      Each delivery is a POST of one event as JSON, signed in the Redress-Signature header; docs/OPERATIONS.md \
      lists the event types and shows how a receiver checks the signature.
      """,
    subcommands: [Add.self, List.self, Remove.self, Test.self, Deliveries.self, Replay.self, RotateSecret.self]
  )

  struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Subscribe a URL to events; prints the signing secret once.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The https:// URL to post events to.") var url: String
    @Option(name: .customLong("event"), help: "An event type to send (repeatable; default: every type).") var events: [EventTypeArgument] = []
    @Flag(name: .customLong("client-view"), help: "Send the client's view of each remedy (client-visible event types only).")
    var clientView = false
    @Option(help: "What this webhook is for.") var description = ""
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let created = try await withRedressClient(configuration: configuration) {
          try await $0.createWebhook(
            url: self.url, eventTypes: self.events.map(\.proto), clientView: self.clientView, description: self.description)
        }
        if self.json {
          try Output.json(created)
          return
        }
        Webhooks.show(created.webhook)
        Output.emit("")
        Output.emit("signing secret: \(created.signingSecret)")
        Output.emit("Keep it now: it is not shown again (rotate-secret makes a new one).")
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tenant's webhooks.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let webhooks = try await withRedressClient(configuration: configuration) { try await $0.listWebhooks() }
        if self.json {
          try Output.json(Redress_V1_ListWebhooksResponse.with { $0.webhooks = webhooks })
          return
        }
        Output.table(
          ["ID", "URL", "EVENTS", "VIEW", "DESCRIPTION"],
          webhooks.map { [$0.id, $0.url, Webhooks.events($0), $0.clientView ? "client" : "staff", $0.description_p] }
        )
      }
    }
  }

  struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a webhook and the deliveries still waiting for it.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The webhook id (whk_...).") var id: String

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let dropped = try await withRedressClient(configuration: configuration) { try await $0.deleteWebhook(id: self.id) }
        Output.emit("removed \(self.id); \(dropped) waiting deliveries dropped")
      }
    }
  }

  struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a webhook.test event now and show the answer.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The webhook id (whk_...).") var id: String

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let result = try await withRedressClient(configuration: configuration) { try await $0.testWebhook(id: self.id) }
        if result.error.isEmpty {
          Output.emit("delivered: HTTP \(result.httpStatus) in \(result.durationMs) ms (event \(result.eventID))")
        } else {
          Output.emit("not delivered: \(result.error) after \(result.durationMs) ms (event \(result.eventID))")
          throw ExitCode(6)
        }
      }
    }
  }

  struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a webhook's deliveries, newest first.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The webhook id (whk_...).") var id: String
    @Option(help: "Only deliveries in this state (repeatable).") var state: [DeliveryStateArgument] = []
    @Option(name: .customLong("page-size"), help: "1-500.") var pageSize: Int32 = 50
    @Option(name: .customLong("page-token")) var pageToken: String?
    @Flag(name: .customLong("json"), help: "Print JSON.") var json = false

    func run() async throws {
      let request = Redress_V1_ListWebhookDeliveriesRequest.with {
        $0.webhookID = self.id
        $0.states = self.state.map(\.proto)
        $0.pageSize = self.pageSize
        if let pageToken = self.pageToken { $0.pageToken = pageToken }
      }
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let page = try await withRedressClient(configuration: configuration) { try await $0.webhookDeliveries(request) }
        if self.json {
          try Output.json(Redress_V1_ListWebhookDeliveriesResponse.with {
            $0.deliveries = page.items
            $0.nextPageToken = page.nextPageToken ?? ""
          })
          return
        }
        Output.table(
          ["ID", "EVENT", "REMEDY", "VERSION", "STATE", "ATTEMPTS", "LAST", "NEXT ATTEMPT"],
          page.items.map {
            [
              $0.id, $0.eventType, $0.remedyID, "\($0.remedyVersion)", Output.name($0.state), "\($0.attempts)",
              $0.lastError.isEmpty ? ($0.lastHTTPStatus == 0 ? "" : "HTTP \($0.lastHTTPStatus)") : $0.lastError,
              $0.hasNextAttemptAt ? Output.date($0.nextAttemptAt) : "",
            ]
          }
        )
        if let token = page.nextPageToken {
          Output.emit("")
          Output.emit("more: --page-token \(token)")
        }
      }
    }
  }

  struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send deliveries again: the given ones, or every dead-lettered one of the webhook.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The webhook id (whk_...).") var id: String
    @Argument(help: "Delivery ids (dlv_...); none: every dead delivery.") var deliveries: [String] = []

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let count = try await withRedressClient(configuration: configuration) {
          try await $0.replayWebhookDeliveries(webhookID: self.id, deliveryIDs: self.deliveries)
        }
        Output.emit("\(count) deliveries queued again")
      }
    }
  }

  struct RotateSecret: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rotate-secret",
      abstract: "Make a new signing secret; the previous one keeps signing for a while so receivers can switch.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The webhook id (whk_...).") var id: String
    @Option(name: .customLong("keep-previous-seconds"), help: "How long the previous secret still signs (0: a day; at most a week).")
    var keepPrevious: Int64 = 0

    func run() async throws {
      let configuration = try self.connection.clientConfiguration()
      try await Failure.reporting {
        let rotated = try await withRedressClient(configuration: configuration) {
          try await $0.rotateWebhookSecret(id: self.id, keepPreviousSeconds: self.keepPrevious)
        }
        Output.emit("signing secret: \(rotated.signingSecret)")
        if rotated.webhook.hasPreviousSecretExpiresAt {
          Output.emit("The previous secret still signs until \(Output.date(rotated.webhook.previousSecretExpiresAt)).")
        }
      }
    }
  }

  static func events(_ webhook: Redress_V1_WebhookSubscription) -> String {
    webhook.eventTypes.isEmpty ? "all" : webhook.eventTypes.map(\.dottedName).joined(separator: ",")
  }

  static func show(_ webhook: Redress_V1_WebhookSubscription) {
    Output.fields([
      ("id", webhook.id), ("url", webhook.url), ("events", Self.events(webhook)),
      ("view", webhook.clientView ? "client" : "staff"), ("description", webhook.description_p),
    ])
  }
}
