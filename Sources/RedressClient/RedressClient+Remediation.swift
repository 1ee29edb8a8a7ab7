public import RedressSchemas
import GRPCCore

extension RedressClient {
  /// A remedy by its id.
  public func remedy(id: String) async throws -> Redress_V1_Remedy {
    try await self.retrying(.safe) {
      try await self.remediation.getRemedy(.with { $0.remedyID = id }, metadata: self.metadata, options: self.callOptions)
    }
  }

  /// The remedy opened for an incident.
  public func remedy(incidentID: String) async throws -> Redress_V1_Remedy {
    try await self.retrying(.safe) {
      try await self.remediation.getRemedy(
        .with { $0.incidentID = incidentID },
        metadata: self.metadata,
        options: self.callOptions
      )
    }
  }

  /// A page of the caller's tenant's remedies.
  public func listRemedies(_ request: Redress_V1_ListRemediesRequest) async throws -> Page<Redress_V1_Remedy> {
    let response = try await self.listRemediesResponse(request)
    return Page(items: response.remedies, nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken)
  }

  /// One page of remedies as the service answered it: with a `group_id` filter it carries the group's
  /// summary (staff identities).
  public func listRemediesResponse(_ request: Redress_V1_ListRemediesRequest) async throws -> Redress_V1_ListRemediesResponse {
    try await self.retrying(.safe) {
      try await self.remediation.listRemedies(request, metadata: self.metadata, options: self.callOptions)
    }
  }

  /// Takes one playbook action on a remedy.
  ///
  /// Retried only when the server refused it before doing anything (rate limited with a retry-after):
  /// repeating an action that may have been applied would answer `aborted` for a stale version.
  ///
  /// - Parameters:
  ///   - remedyID: The remedy.
  ///   - expectedVersion: The version the caller last saw; a stale one answers `aborted`.
  ///   - action: What to do.
  /// - Throws: `RPCError` — `failedPrecondition` says what must happen first; `aborted` means someone else
  ///   changed the remedy: read it again and decide again; `permissionDenied` names the role needed.
  public func act(
    on remedyID: String,
    expectedVersion: Int64,
    _ action: Redress_V1_ActRequest.OneOf_Action
  ) async throws -> Redress_V1_Remedy {
    let request = Redress_V1_ActRequest.with {
      $0.remedyID = remedyID
      $0.expectedVersion = expectedVersion
      $0.action = action
    }
    return try await self.retrying(.onlyIfRefused) {
      try await self.remediation.act(request, metadata: self.metadata, options: self.callOptions)
    }
  }
}
