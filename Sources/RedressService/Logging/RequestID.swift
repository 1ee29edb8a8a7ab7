public import GRPCCore
public import Logging

/// The id of the RPC the current task serves, on every log line written while serving it (as `request_id`).
///
/// Taken from the caller's `x-request-id` metadata when it is 1 to 64 letters, digits, `.`, `_`, `:` or `-`
/// (so a caller can follow its own id through the logs); otherwise made here (16 hex digits). The server sends it
/// back in the response's `x-request-id` (initial metadata, or the error's metadata) so a caller can quote it.
public enum RequestID {
  @TaskLocal public static var current: String?

  /// The metadata key in both directions.
  public static let metadataKey = "x-request-id"

  /// Adds `request_id` to every log line written in the task of a request: pass to `LoggingSystem.bootstrap`
  /// (``ServiceRunner/bootstrapLogging(level:format:)`` does) or to a `Logger`.
  public static let metadataProvider = Logger.MetadataProvider {
    guard let id = RequestID.current else { return [:] }
    return ["request_id": .string(id)]
  }

  /// Whether a caller's id is used as it is.
  public static func isAcceptable(_ id: String) -> Bool {
    (1...64).contains(id.utf8.count)
      && id.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
          || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
          || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-")
      }
  }

  /// A new id: 16 hex digits.
  public static func make() -> String {
    let value = UInt64.random(in: .min ... .max)
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }
}

/// Binds ``RequestID/current`` for the handler and a streaming response's producer, and echoes it to the caller.
/// First in the chain, so authentication's log lines carry it too.
public struct RequestIDInterceptor: ServerInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let given = request.metadata[stringValues: RequestID.metadataKey].first { _ in true }
    let id = given.flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? RequestID.make()
    var response: StreamingServerResponse<Output>
    do {
      response = try await RequestID.$current.withValue(id) { try await next(request, context) }
    } catch var error as RPCError {
      error.metadata.replaceOrAddString(id, forKey: RequestID.metadataKey)
      throw error
    }
    switch response.accepted {
    case .success(var contents):
      contents.metadata.replaceOrAddString(id, forKey: RequestID.metadataKey)
      response.accepted = .success(contents)
    case .failure(var error):
      error.metadata.replaceOrAddString(id, forKey: RequestID.metadataKey)
      response.accepted = .failure(error)
    }
    return response.binding(RequestID.$current, to: id)
  }
}
