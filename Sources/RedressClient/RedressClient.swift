import GRPCCore
import RedressTracing
public import Tracing
public import Logging
import RedressSchemas
import RedressWire
import Foundation
import GRPCProtobuf

/// One client for both Redress services: submit and read incidents, read, act on and watch remedies.
///
/// ```swift
/// try await withRedressClient(configuration: configuration) { redress in
///   let submission = try await redress.submit(report)
///   print(submission.incident.id)
/// }
/// ```
///
/// Every call has a deadline (``Configuration/defaultTimeout``). Submits carry an idempotency key made once per
/// logical submit and reused across retries, so a retry never creates a second incident. Calls that are safe
/// to repeat are retried on `unavailable`, and on `resourceExhausted` when the server says when to come back
/// (its `retry-after-ms`, which the client honours).
public final class RedressClient: Sendable {
  let configuration: Configuration
  let logger: Logger
  private let intakeClient: GRPCClient<WireClientTransport>
  private let remediationClient: GRPCClient<WireClientTransport>
  let intake: Redress_V1_Intake.Client<WireClientTransport>
  let remediation: Redress_V1_Remediation.Client<WireClientTransport>
  /// Served by the remediation service, over the same connection.
  let webhooks: Redress_V1_Webhooks.Client<WireClientTransport>

  /// A client for `configuration`. Nothing connects until ``runConnections()`` runs and a call is made;
  /// prefer ``withRedressClient(configuration:logger:_:)``, which does both and shuts down afterwards.
  ///
  /// Every call gets a client span from `tracer` (by default the process's `InstrumentationSystem.tracer`, a
  /// no-op until the application bootstraps one, e.g. with swift-otel), and its context goes to the server in
  /// the call's metadata, so the services' spans join the caller's trace.
  public init(
    configuration: Configuration,
    logger: Logger = Logger(label: "redress.client"),
    tracer: any Tracer = InstrumentationSystem.tracer
  ) throws {
    self.configuration = configuration
    self.logger = logger
    let security = try configuration.clientSecurity()
    self.intakeClient = GRPCClient(
      transport: try WireClientTransport(
        host: configuration.intake.host,
        port: configuration.intake.port,
        config: .defaults(security: security),
        logger: logger
      ),
      interceptors: [ClientTracingInterceptor(tracer: tracer)]
    )
    self.remediationClient = GRPCClient(
      transport: try WireClientTransport(
        host: configuration.remediation.host,
        port: configuration.remediation.port,
        config: .defaults(security: security),
        logger: logger
      ),
      interceptors: [ClientTracingInterceptor(tracer: tracer)]
    )
    self.intake = Redress_V1_Intake.Client(wrapping: self.intakeClient)
    self.remediation = Redress_V1_Remediation.Client(wrapping: self.remediationClient)
    self.webhooks = Redress_V1_Webhooks.Client(wrapping: self.remediationClient)
  }

  /// Runs both services' connections until ``close()``.
  public func runConnections() async throws {
    try await withThrowingDiscardingTaskGroup { group in
      group.addTask { try await self.intakeClient.runConnections() }
      group.addTask { try await self.remediationClient.runConnections() }
    }
  }

  /// Lets in-flight calls finish, then stops ``runConnections()``.
  public func close() {
    self.intakeClient.beginGracefulShutdown()
    self.remediationClient.beginGracefulShutdown()
  }

  var metadata: Metadata {
    var metadata: Metadata = [:]
    if let token = self.configuration.credentials.token {
      metadata.addString("Bearer \(token)", forKey: "authorization")
    }
    return metadata
  }

  var callOptions: CallOptions {
    var options = CallOptions.defaults
    options.timeout = self.configuration.defaultTimeout
    return options
  }
}

/// Runs `body` with a connected ``RedressClient``, then shuts it down.
public func withRedressClient<Result: Sendable>(
  configuration: RedressClient.Configuration,
  logger: Logger = Logger(label: "redress.client"),
  _ body: (RedressClient) async throws -> Result
) async throws -> Result {
  let client = try RedressClient(configuration: configuration, logger: logger)
  return try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await client.runConnections() }
    defer { client.close() }
    return try await body(client)
  }
}
