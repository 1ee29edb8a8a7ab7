import GRPCCore

extension StreamingServerResponse {
  /// The response with `local` bound to `value` while its producer runs too. A streaming response's producer
  /// runs after the interceptor's `next` has returned, outside any task-local bound around `next`.
  func binding<Value: Sendable>(_ local: TaskLocal<Value>, to value: Value) -> Self {
    guard case .success(var contents) = self.accepted else { return self }
    var response = self
    let producer = contents.producer
    contents.producer = { writer in
      try await local.withValue(value) { try await producer(writer) }
    }
    response.accepted = .success(contents)
    return response
  }
}
