public import RedressSchemas
import Foundation
import GRPCCore

/// The answer to a submit.
public struct Submission: Sendable, Hashable {
  /// The stored incident.
  public var incident: Redress_V1_Incident
  /// True when the server had already stored this submit (a retry with the same idempotency key).
  public var replayed: Bool
  /// The idempotency key the submit used; pass it again to retry the same submit later.
  public var idempotencyKey: String
}

/// One page of a listing.
public struct Page<Item: Sendable & Hashable>: Sendable, Hashable {
  /// The items of this page, in the listing's order.
  public var items: [Item]
  /// Pass to the next call for the next page; `nil` on the last page.
  public var nextPageToken: String?
}

extension RedressClient {
  /// Submits one incident and returns it once it is durably stored.
  ///
  /// - Parameters:
  ///   - report: What happened. The reporting tool is the authenticated identity, not part of the report.
  ///   - idempotencyKey: Reuse it to retry this submit later; by default a new random key, reused by this
  ///     call's own retries.
  /// - Throws: `RPCError` — `invalidArgument` lists every problem (also as google.rpc.BadRequest details),
  ///   `alreadyExists` when the key was used for a different report.
  public func submit(_ report: Redress_V1_IncidentReport, idempotencyKey: String? = nil) async throws -> Submission {
    let key = idempotencyKey ?? Self.makeIdempotencyKey()
    let request = Redress_V1_SubmitIncidentRequest.with {
      $0.idempotencyKey = key
      $0.report = report
    }
    let response = try await self.retrying(.safe) {
      try await self.intake.submitIncident(request, metadata: self.metadata, options: self.callOptions)
    }
    return Submission(incident: response.incident, replayed: response.replayed, idempotencyKey: key)
  }

  /// Submits many incidents in one call; each is answered on its own, in order. Items without an idempotency
  /// key get one, kept across retries of the whole call.
  public func submit(batch: [Redress_V1_SubmitIncidentRequest]) async throws -> Redress_V1_SubmitIncidentsResponse {
    let items = batch.map { item in
      var item = item
      if item.idempotencyKey.isEmpty {
        item.idempotencyKey = Self.makeIdempotencyKey()
      }
      return item
    }
    return try await self.retrying(.safe) {
      try await self.intake.submitIncidents(metadata: self.metadata, options: self.callOptions) { writer in
        try await writer.write(contentsOf: items)
      }
    }
  }

  /// One incident of the caller's tenant.
  public func incident(id: String) async throws -> Redress_V1_Incident {
    try await self.retrying(.safe) {
      try await self.intake.getIncident(.with { $0.incidentID = id }, metadata: self.metadata, options: self.callOptions)
    }
  }

  /// A page of the caller's tenant's incidents, newest first.
  ///
  /// - Parameter request: Filters, page size and the previous page's token.
  public func listIncidents(_ request: Redress_V1_ListIncidentsRequest) async throws -> Page<Redress_V1_Incident> {
    let response = try await self.retrying(.safe) {
      try await self.intake.listIncidents(request, metadata: self.metadata, options: self.callOptions)
    }
    return Page(items: response.incidents, nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken)
  }

  /// A new random idempotency key (`rk_` and 32 hex digits).
  static func makeIdempotencyKey() -> String {
    "rk_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
  }
}
