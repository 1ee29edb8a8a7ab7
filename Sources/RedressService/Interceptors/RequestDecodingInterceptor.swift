public import GRPCCore
import SwiftProtobuf

/// Turns grpc-swift's generic "Can't deserialize to message of type X" into an answer that says which
/// request message could not be decoded and which protobuf rule the bytes broke (invalid UTF-8 in a string
/// field, truncated, malformed, too deeply nested), still `invalidArgument`.
///
/// The deserializer runs inside the generated handler and keeps only SwiftProtobuf's error, which does not
/// say which field was at fault; the message type and the rule are what can be named.
public struct RequestDecodingInterceptor: ServerInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    // A unary or server-streaming handler answers a request it cannot read with a failed response; a
    // streaming one throws.
    do {
      var response = try await next(request, context)
      if case .failure(let error) = response.accepted, let clearer = Self.clearer(error, Input.self) {
        response.accepted = .failure(clearer)
      }
      return response
    } catch let error as RPCError {
      throw Self.clearer(error, Input.self) ?? error
    }
  }

  /// The clearer error for a deserialization failure, or `nil` if `error` is something else.
  static func clearer<Input>(_ error: RPCError, _ input: Input.Type) -> RPCError? {
    guard error.code == .invalidArgument, let decoding = error.cause as? BinaryDecodingError else { return nil }
    let messageName = (Input.self as? any SwiftProtobuf.Message.Type)?.protoMessageName ?? "\(Input.self)"
    return RPCError(
      code: .invalidArgument,
      message: "The request is not a valid \(messageName): \(Self.rule(decoding)).",
      cause: error
    )
  }

  static func rule(_ error: BinaryDecodingError) -> String {
    switch error {
    case .invalidUTF8:
      return "a string field holds bytes that are not UTF-8 (protobuf strings must be UTF-8; send binary data in a bytes field)"
    case .truncated:
      return "it ends in the middle of a field (truncated)"
    case .malformedProtobuf, .trailingGarbage:
      return "its bytes are not protobuf wire format for this message"
    case .messageDepthLimit:
      return "its messages are nested more deeply than the decoder allows"
    case .missingRequiredFields:
      return "a required field is missing"
    default:
      return "it cannot be decoded (\(error))"
    }
  }
}
