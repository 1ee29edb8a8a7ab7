import ArgumentParser
import Foundation
import GRPCCore
import GRPCProtobuf

/// Turns an error into a message on stderr and a documented exit code.
enum Failure {
  static func exitCode(for code: RPCError.Code) -> Int32 {
    switch code {
    case .invalidArgument, .outOfRange: 2
    case .notFound: 3
    case .alreadyExists, .aborted, .failedPrecondition: 4
    case .unauthenticated, .permissionDenied: 5
    case .unavailable, .deadlineExceeded, .resourceExhausted, .cancelled: 6
    default: 1
    }
  }

  /// Runs `body`; an `RPCError` is reported with its field violations and becomes ``exitCode(for:)``.
  static func reporting(_ body: () async throws -> Void) async throws {
    do {
      try await body()
    } catch let error as RPCError {
      var lines = ["error: \(error.message) (\(error.code))"]
      if let status = try? error.unpackGoogleRPCStatus() {
        for detail in status.details {
          if let badRequest = detail.badRequest {
            for violation in badRequest.violations {
              lines.append("  - \(violation.field): \(violation.violationDescription)")
            }
          }
        }
      }
      if let retryAfter = error.metadata[stringValues: "retry-after-ms"].first(where: { _ in true }) {
        lines.append("  retry after \(retryAfter) ms")
      }
      Output.error(lines)
      throw ExitCode(Self.exitCode(for: error.code))
    }
  }
}
