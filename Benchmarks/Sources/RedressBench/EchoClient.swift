import GRPCCore

/// The two calls the scenarios make, erased over the client's transport type.
struct EchoClient: Sendable {
  /// One unary echo; throws unless the reply is the request.
  var echo: @Sendable ([UInt8]) async throws -> Void
  /// One server stream of `count` messages of `size` octets; returns how many arrived.
  var stream: @Sendable (_ count: Int, _ size: Int) async throws -> Int

  init<Transport: ClientTransport>(_ client: GRPCClient<Transport>) {
    self.echo = { payload in
      let count = payload.count
      try await client.unary(
        request: ClientRequest(message: payload),
        descriptor: EchoService.echo,
        serializer: BytesCodec(),
        deserializer: BytesCodec(),
        options: .defaults
      ) { response in
        let message = try response.message
        guard message.count == count else {
          throw RPCError(code: .dataLoss, message: "Echo answered \(message.count) octets for \(count).")
        }
      }
    }
    self.stream = { count, size in
      try await client.serverStreaming(
        request: ClientRequest(message: EchoService.encodeStreamRequest(count: count, size: size)),
        descriptor: EchoService.stream,
        serializer: BytesCodec(),
        deserializer: BytesCodec(),
        options: .defaults
      ) { response in
        var received = 0
        for try await message in response.messages {
          guard message.count == size else {
            throw RPCError(code: .dataLoss, message: "Stream sent \(message.count) octets for \(size).")
          }
          received += 1
        }
        return received
      }
    }
  }
}

/// Runs one `GRPCClient` per transport (one connection each) while `body` runs, then shuts them down.
func withEchoClients<Transport: ClientTransport, Result: Sendable>(
  transports: [Transport],
  _ body: @Sendable ([EchoClient]) async throws -> Result
) async throws -> Result {
  let clients = transports.map { GRPCClient(transport: $0) }
  return try await withThrowingTaskGroup(of: Void.self) { group in
    for client in clients {
      group.addTask { try await client.runConnections() }
    }
    do {
      let result = try await body(clients.map { EchoClient($0) })
      for client in clients { client.beginGracefulShutdown() }
      try await group.waitForAll()
      return result
    } catch {
      group.cancelAll()
      throw error
    }
  }
}
