import Foundation
public import Logging
public import NIOCore
public import ServiceLifecycle

/// How a Redress executable runs: logs to standard error, its services in one `ServiceGroup` that shuts down
/// gracefully on SIGTERM or SIGINT, and one line on standard output once it listens.
public enum ServiceRunner {
  /// Sends every log to standard error at `level` or above, as text or JSON lines, each line of a request with
  /// its `request_id` (``RequestID``). Call once, before the first `Logger` is made.
  public static func bootstrapLogging(level: Logger.Level, format: LogFormat = .text) {
    LoggingSystem.bootstrap(
      { label, provider in
        switch format {
        case .text:
          var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
          handler.logLevel = level
          return handler
        case .json:
          var handler = JSONLogHandler(label: label, metadataProvider: provider)
          handler.logLevel = level
          return handler
        }
      },
      metadataProvider: .multiplex([RequestID.metadataProvider, TraceID.metadataProvider])
    )
  }

  /// Runs `services` until SIGTERM or SIGINT has shut them all down.
  ///
  /// Once `listeningAddress` answers, prints `<name> listening on port N` to standard output, which is how
  /// whoever started the process (scripts, `redress dev`, tests) learns a port chosen with `--port 0`.
  public static func run(
    name: String,
    services: [any Service],
    listeningAddress: @escaping @Sendable () async throws -> SocketAddress,
    grpcHTTP2Port: (@Sendable () async throws -> Int?)? = nil,
    metricsPort: (@Sendable () async throws -> Int?)? = nil,
    logger: Logger
  ) async throws {
    let group = Self.group(services, logger: logger)
    try await withThrowingDiscardingTaskGroup { tasks in
      tasks.addTask { try await group.run() }
      tasks.addTask {
        let port = try await listeningAddress().port ?? 0
        logger.notice("listening", metadata: ["port": "\(port)"])
        if let grpcPort = try await grpcHTTP2Port?() {
          logger.notice("gRPC over HTTP/2 listening", metadata: ["port": "\(grpcPort)"])
          FileHandle.standardOutput.write(Data("\(name) gRPC HTTP/2 listening on port \(grpcPort)\n".utf8))
        }
        if let metricsPort = try await metricsPort?() {
          logger.notice("metrics listening", metadata: ["port": "\(metricsPort)", "path": "/metrics"])
          FileHandle.standardOutput.write(Data("\(name) metrics listening on port \(metricsPort)\n".utf8))
        }
        FileHandle.standardOutput.write(Data("\(name) listening on port \(port)\n".utf8))
      }
    }
  }

  /// A group running `services` in order that shuts down gracefully (in reverse order) on SIGTERM or SIGINT.
  public static func group(_ services: [any Service], logger: Logger) -> ServiceGroup {
    ServiceGroup(
      configuration: .init(
        services: services.map { .init(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
      )
    )
  }
}
