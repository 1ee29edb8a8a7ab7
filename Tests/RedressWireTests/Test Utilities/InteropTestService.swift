import Foundation
import GRPCCore

/// `grpc.testing.TestService` as the gRPC interop test descriptions specify its server
/// (https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md), for running the interop
/// cases over the Redress wire.
///
/// - Responses carry payloads of zeros of the requested sizes.
/// - A request's `response_status` with a non-OK code ends the RPC with that code and message.
/// - Request metadata `x-grpc-test-echo-initial` comes back as initial metadata and
///   `x-grpc-test-echo-trailing-bin` as trailing metadata (also on error statuses).
/// - `interval_us` pauses on the injected clock before a response is sent.
/// - Streaming handlers stop as soon as the RPC is cancelled and report it to the optional
///   ``CancellationProbe``.
struct InteropTestService: Grpc_Testing_TestService.ServiceProtocol {
  /// Request metadata echoed back as initial (response header) metadata.
  static let echoInitialMetadataKey = "x-grpc-test-echo-initial"
  /// Request metadata echoed back as trailing metadata.
  static let echoTrailingMetadataKey = "x-grpc-test-echo-trailing-bin"

  /// Told each time a streaming handler sees its RPC cancelled.
  let cancellationProbe: CancellationProbe?
  /// The clock `interval_us` pauses run on.
  let clock: any Clock<Duration>

  init(cancellationProbe: CancellationProbe? = nil, clock: any Clock<Duration> = ContinuousClock()) {
    self.cancellationProbe = cancellationProbe
    self.clock = clock
  }

  func emptyCall(
    request: ServerRequest<Grpc_Testing_Empty>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Testing_Empty> {
    let echo = EchoedMetadata(request.metadata)
    return ServerResponse(message: Grpc_Testing_Empty(), metadata: echo.initial, trailingMetadata: echo.trailing)
  }

  func unaryCall(
    request: ServerRequest<Grpc_Testing_SimpleRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Testing_SimpleResponse> {
    let echo = EchoedMetadata(request.metadata)
    if request.message.hasResponseStatus {
      try Self.throwRequestedStatus(request.message.responseStatus, trailing: echo.trailing)
    }
    guard request.message.responseSize >= 0 else {
      throw RPCError(code: .invalidArgument, message: "response_size must not be negative.")
    }
    let response = Grpc_Testing_SimpleResponse.with {
      $0.payload = Self.payload(size: request.message.responseSize)
    }
    return ServerResponse(message: response, metadata: echo.initial, trailingMetadata: echo.trailing)
  }

  func streamingOutputCall(
    request: ServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
    let echo = EchoedMetadata(request.metadata)
    let message = request.message
    if message.hasResponseStatus {
      try Self.throwRequestedStatus(message.responseStatus, trailing: echo.trailing)
    }
    try Self.validate(message.responseParameters)
    return StreamingServerResponse(metadata: echo.initial) { writer in
      try await self.untilRPCCancelled(context) {
        try await self.respond(to: message, with: writer)
      }
      return echo.trailing
    }
  }

  func streamingInputCall(
    request: StreamingServerRequest<Grpc_Testing_StreamingInputCallRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Testing_StreamingInputCallResponse> {
    let echo = EchoedMetadata(request.metadata)
    let total = try await self.untilRPCCancelled(context) {
      var total = 0
      for try await message in request.messages {
        total += message.payload.body.count
      }
      return total
    }
    guard let aggregated = Int32(exactly: total) else {
      throw RPCError(code: .outOfRange, message: "The aggregated payload size \(total) does not fit an int32.")
    }
    let response = Grpc_Testing_StreamingInputCallResponse.with { $0.aggregatedPayloadSize = aggregated }
    return ServerResponse(message: response, metadata: echo.initial, trailingMetadata: echo.trailing)
  }

  func fullDuplexCall(
    request: StreamingServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
    let echo = EchoedMetadata(request.metadata)
    return StreamingServerResponse(metadata: echo.initial) { writer in
      try await self.untilRPCCancelled(context) {
        // Ping-pong: each request is answered before the next one is read.
        for try await message in request.messages {
          try await self.answer(message, with: writer, trailing: echo.trailing)
        }
      }
      return echo.trailing
    }
  }

  func halfDuplexCall(
    request: StreamingServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
    let echo = EchoedMetadata(request.metadata)
    return StreamingServerResponse(metadata: echo.initial) { writer in
      try await self.untilRPCCancelled(context) {
        // Buffer every request until the client half-closes, then answer them in order.
        var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await message in request.messages {
          buffered.append(message)
        }
        for message in buffered {
          try await self.answer(message, with: writer, trailing: echo.trailing)
        }
      }
      return echo.trailing
    }
  }

  func unimplementedCall(
    request: ServerRequest<Grpc_Testing_Empty>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Testing_Empty> {
    throw RPCError(code: .unimplemented, message: "grpc.testing.TestService/UnimplementedCall is never implemented.")
  }
}

extension InteropTestService {
  /// Answers one streaming request: its requested status if any, else its responses.
  private func answer(
    _ message: Grpc_Testing_StreamingOutputCallRequest,
    with writer: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>,
    trailing: Metadata
  ) async throws {
    if message.hasResponseStatus {
      try Self.throwRequestedStatus(message.responseStatus, trailing: trailing)
    }
    try Self.validate(message.responseParameters)
    try await self.respond(to: message, with: writer)
  }

  /// Writes one response per response parameter, pausing `interval_us` before each.
  private func respond(
    to request: Grpc_Testing_StreamingOutputCallRequest,
    with writer: RPCWriter<Grpc_Testing_StreamingOutputCallResponse>
  ) async throws {
    for parameters in request.responseParameters {
      if parameters.intervalUs > 0 {
        try await self.clock.sleep(for: .microseconds(parameters.intervalUs))
      }
      try await writer.write(.with { $0.payload = Self.payload(size: parameters.size) })
    }
  }

  /// Runs `body` until it returns or the RPC is cancelled, whichever comes first.
  ///
  /// The executor cancels only the RPC's cancellation handle when a deadline passes (not the handler's
  /// task), so a handler waiting on its peer has to race the handle to stop promptly.
  private func untilRPCCancelled<Result: Sendable>(
    _ context: ServerContext,
    _ body: @escaping @Sendable () async throws -> Result
  ) async throws -> Result {
    let outcome: RaceOutcome<Result>
    do {
      outcome = try await withThrowingTaskGroup(of: RaceOutcome<Result>.self) { group in
        group.addTask { .finished(try await body()) }
        group.addTask {
          try await context.cancellation.cancelled
          return .rpcCancelled
        }
        defer { group.cancelAll() }
        // Only a cancelled parent task leaves the group without a first result.
        return try await group.next() ?? .rpcCancelled
      }
    } catch {
      // The body failed; a transport may fail the request stream and cancel the handle together.
      if context.cancellation.isCancelled {
        self.cancellationProbe?.record(context.descriptor, source: .rpcCancellationHandle)
      } else if Task.isCancelled {
        self.cancellationProbe?.record(context.descriptor, source: .taskCancellation)
      }
      throw error
    }

    switch outcome {
    case .finished(let result):
      return result
    case .rpcCancelled:
      let source: CancellationProbe.Event.Source =
        context.cancellation.isCancelled ? .rpcCancellationHandle : .taskCancellation
      self.cancellationProbe?.record(context.descriptor, source: source)
      throw RPCError(code: .cancelled, message: "The RPC was cancelled.")
    }
  }

  /// Throws the status a test client asked for, unless it asked for OK.
  private static func throwRequestedStatus(_ status: Grpc_Testing_EchoStatus, trailing: Metadata) throws {
    guard let code = Status.Code(rawValue: Int(status.code)) else {
      throw RPCError(code: .invalidArgument, message: "response_status code \(status.code) is not a gRPC status code.")
    }
    if let error = RPCError(status: Status(code: code, message: status.message), metadata: trailing) {
      throw error
    }
  }

  private static func validate(_ parameters: [Grpc_Testing_ResponseParameters]) throws {
    for parameter in parameters where parameter.size < 0 || parameter.intervalUs < 0 {
      throw RPCError(
        code: .invalidArgument,
        message: "response_parameters must not have a negative size or interval_us."
      )
    }
  }

  private static func payload(size: Int32) -> Grpc_Testing_Payload {
    .with {
      $0.type = .compressable
      $0.body = Data(count: Int(max(size, 0)))
    }
  }
}

/// Which side of ``InteropTestService``'s race between a handler body and RPC cancellation won.
private enum RaceOutcome<Result: Sendable>: Sendable {
  case finished(Result)
  case rpcCancelled
}

/// The metadata a request asks the interop server to echo back.
private struct EchoedMetadata: Sendable {
  var initial: Metadata = [:]
  var trailing: Metadata = [:]

  init(_ request: Metadata) {
    for value in request[stringValues: InteropTestService.echoInitialMetadataKey] {
      self.initial.addString(value, forKey: InteropTestService.echoInitialMetadataKey)
    }
    for value in request[binaryValues: InteropTestService.echoTrailingMetadataKey] {
      self.trailing.addBinary(value, forKey: InteropTestService.echoTrailingMetadataKey)
    }
  }
}
