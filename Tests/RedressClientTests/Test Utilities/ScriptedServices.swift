import Foundation
import GRPCCore
import RedressSchemas
import RedressService
import Synchronization

/// An intake service whose answers are scripted per attempt, recording what each attempt carried.
final class ScriptedIntake: Redress_V1_Intake.SimpleServiceProtocol, Sendable {
  struct Attempt: Sendable {
    var idempotencyKey: String
    var caller: String?
  }

  private let failures: Mutex<[RPCError]>
  private let recorded = Mutex<[Attempt]>([])

  /// Fails the first attempts with `failures`, in order, then answers.
  init(failures: [RPCError]) {
    self.failures = Mutex(failures)
  }

  var attempts: [Attempt] { self.recorded.withLock { $0 } }

  func submitIncident(
    request: Redress_V1_SubmitIncidentRequest,
    context: ServerContext
  ) async throws -> Redress_V1_SubmitIncidentResponse {
    let caller = Caller.current?.name
    let attempt = Attempt(idempotencyKey: request.idempotencyKey, caller: caller)
    let count = self.recorded.withLock { recorded in
      recorded.append(attempt)
      return recorded.filter { $0.idempotencyKey == request.idempotencyKey }.count
    }
    if let failure = self.failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
      throw failure
    }
    return .with {
      $0.incident.id = "inc_for_" + request.idempotencyKey
      $0.incident.report = request.report
      $0.replayed = count > 1
    }
  }

  func submitIncidents(
    request: RPCAsyncSequence<Redress_V1_SubmitIncidentRequest, any Error>,
    context: ServerContext
  ) async throws -> Redress_V1_SubmitIncidentsResponse {
    throw RPCError(code: .unimplemented, message: "not scripted")
  }

  func getIncident(request: Redress_V1_GetIncidentRequest, context: ServerContext) async throws -> Redress_V1_Incident {
    throw RPCError(code: .notFound, message: "No incident '\(request.incidentID)'.")
  }

  func listIncidents(
    request: Redress_V1_ListIncidentsRequest,
    context: ServerContext
  ) async throws -> Redress_V1_ListIncidentsResponse {
    throw RPCError(code: .unimplemented, message: "not scripted")
  }
}

/// A remediation service whose Act fails as scripted and whose Watch serves scripted streams.
final class ScriptedRemediation: Redress_V1_Remediation.SimpleServiceProtocol, Sendable {
  /// One watch call: the versions to send, then how the stream ends (`nil` = wait until cancelled).
  struct WatchScript: Sendable {
    var versions: [Int64]
    var endWith: RPCError?
  }

  private let actFailures: Mutex<[RPCError]>
  private let actCalls = Mutex(0)
  private let watchScripts: Mutex<[WatchScript]>
  private let watchRequests = Mutex<[Int64]>([])

  init(actFailures: [RPCError] = [], watchScripts: [WatchScript] = []) {
    self.actFailures = Mutex(actFailures)
    self.watchScripts = Mutex(watchScripts)
  }

  var actAttempts: Int { self.actCalls.withLock { $0 } }
  var watchAfterVersions: [Int64] { self.watchRequests.withLock { $0 } }

  func openRemedy(request: Redress_V1_OpenRemedyRequest, context: ServerContext) async throws -> Redress_V1_OpenRemedyResponse {
    throw RPCError(code: .unimplemented, message: "not scripted")
  }

  func getRemedy(request: Redress_V1_GetRemedyRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    throw RPCError(code: .unimplemented, message: "not scripted")
  }

  func listRemedies(request: Redress_V1_ListRemediesRequest, context: ServerContext) async throws -> Redress_V1_ListRemediesResponse {
    throw RPCError(code: .unimplemented, message: "not scripted")
  }

  func watchRemedy(
    request: Redress_V1_WatchRemedyRequest,
    response: RPCWriter<Redress_V1_RemedyUpdate>,
    context: ServerContext
  ) async throws {
    self.watchRequests.withLock { $0.append(request.afterVersion) }
    guard let script = self.watchScripts.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
      throw RPCError(code: .failedPrecondition, message: "no more scripted watches")
    }
    try await withStreamLifetime(context: context) {
      try await self.serve(script, request: request, response: response)
    }
  }

  private func serve(
    _ script: WatchScript,
    request: Redress_V1_WatchRemedyRequest,
    response: RPCWriter<Redress_V1_RemedyUpdate>
  ) async throws {
    for version in script.versions {
      if version == 1 && request.afterVersion == 0 {
        try await response.write(.with { $0.snapshot = .with { $0.id = request.remedyID; $0.version = version } })
      } else {
        try await response.write(
          .with {
            $0.change = .with {
              $0.entry.version = version
              $0.remedy.version = version
            }
          }
        )
      }
    }
    if let error = script.endWith {
      throw error
    }
    // Stay open like a live watch until the client goes away.
    try await Task.sleep(for: .seconds(3600))
  }

  func act(request: Redress_V1_ActRequest, context: ServerContext) async throws -> Redress_V1_Remedy {
    self.actCalls.withLock { $0 += 1 }
    if let failure = self.actFailures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
      throw failure
    }
    return .with {
      $0.id = request.remedyID
      $0.version = request.expectedVersion + 1
    }
  }
}

/// Records the `grpc-timeout` each call arrived with.
final class DeadlineRecorder: ServerInterceptor, Sendable {
  private let timeouts = Mutex<[String?]>([])

  var recorded: [String?] { self.timeouts.withLock { $0 } }

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let timeout = request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true })
    self.timeouts.withLock { $0.append(timeout) }
    return try await next(request, context)
  }
}
