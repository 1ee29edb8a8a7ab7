import Foundation
import GRPCCore
import Logging
import RedressSchemas
import RedressTestSupport
import RedressWire
import Synchronization
import Testing

@testable import RedressService

/// Shutdown and deadlines as a client sees them: every stream ends (issue 11, findings 9 and 10).
@Suite("Server lifecycle")
struct ServerLifecycleTests {
  /// A RedressServer with `services` (health is added) on 127.0.0.1, plaintext (the wire's TLS is tested
  /// elsewhere), running until `body` returns; `body` gets the server, its port and the task running it.
  static func withServer<T: Sendable>(
    services: [any RegistrableRPCService] = [],
    gracePeriod: Duration = .seconds(10),
    _ body: (RedressServer, Int, Task<Void, any Error>) async throws -> T
  ) async throws -> T {
    var logger = Logger(label: "lifecycle-test")
    logger.logLevel = .critical
    let server = try RedressServer(
      config: .init(host: "127.0.0.1", port: 0, security: .plaintextForTestingOnly, shutdownGracePeriod: gracePeriod),
      services: services,
      directory: try IdentityDirectory(entries: [
        .init(name: "tool", tenant: "t", roles: [.read], tokenSHA256: [IdentityDirectory.digest(ofToken: "token")])
      ]),
      rateLimiter: nil,
      logger: logger
    )
    let running = Task { try await server.run() }
    defer { running.cancel() }
    let port = try await server.listeningAddress.port ?? 0
    return try await body(server, port, running)
  }

  static func withClient<T: Sendable>(port: Int, _ body: (GRPCClient<WireClientTransport>) async throws -> T) async throws -> T {
    let transport = try WireClientTransport(host: "127.0.0.1", port: port, config: .defaults(security: .plaintextForTestingOnly))
    return try await withGRPCClient(transport: transport) { try await body($0) }
  }

  @Test("graceful shutdown with a Health/Watch open ends the watch and the server returns (finding 9)")
  func shutdownEndsHealthWatch() async throws {
    try await Self.withServer { server, port, running in
      try await Self.withClient(port: port) { client in
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        let seen = Mutex<[Grpc_Health_V1_HealthCheckResponse.ServingStatus]>([])
        let (firstSeen, first) = AsyncStream.makeStream(of: Void.self)
        async let watched: Void = health.watch(.init()) { response in
          for try await message in response.messages {
            seen.withLock { $0.append(message.status) }
            first.yield()
          }
        }
        for await _ in firstSeen { break }
        server.beginGracefulShutdown()
        // Before the fix the server never returned: the watch held graceful shutdown open forever.
        try await withTimeout(.seconds(10), "the server to return after graceful shutdown") {
          try await running.value
        }
        var watchError: (any Error)?
        do { try await watched } catch { watchError = error }
        #expect(watchError is RPCError, "the watch ended without an error")
        #expect(seen.withLock { $0.first } == .serving)
      }
    }
  }

  @Test("a Health/Watch whose grpc-timeout passes ends with deadlineExceeded (finding 10)")
  func healthWatchDeadline() async throws {
    try await Self.withServer { _, port, _ in
      try await Self.withClient(port: port) { client in
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        // The timeout as a peer in another language sends it: metadata only, no client-side deadline.
        let error = try await withTimeout(.seconds(10), "the watch to end at its deadline") {
          try await #require(throws: RPCError.self) {
            try await health.watch(.init(), metadata: ["grpc-timeout": "300m"]) { response in
              for try await _ in response.messages {}
            }
          }
        }
        #expect(error.code == .deadlineExceeded, "\(error)")
      }
    }
  }

  @Test("a call still running when the grace period ends is closed, and the server returns normally")
  func gracePeriodBoundsShutdown() async throws {
    let service = SleepingService()
    try await Self.withServer(services: [service], gracePeriod: .milliseconds(300)) { server, port, running in
      try await Self.withClient(port: port) { client in
        async let call: [UInt8] = client.unary(
          request: ClientRequest(message: [], metadata: ["authorization": "Bearer token"]),
          descriptor: SleepingService.method,
          serializer: PassthroughBytes(),
          deserializer: PassthroughBytes(),
          options: .defaults
        ) { try $0.message }
        try await withTimeout(.seconds(10), "the call to start") {
          while !service.started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        }
        server.beginGracefulShutdown()
        try await withTimeout(.seconds(10), "the server to return after its grace period") {
          try await running.value
        }
        var callError: (any Error)?
        do { _ = try await call } catch { callError = error }
        #expect(callError is RPCError, "the call ended without an error")
      }
    }
  }
}

/// `test.Sleeping/Sleep`: sleeps for an hour (ending only on task cancellation), ignoring its RPC's
/// cancellation handle, as a handler stuck on slow work would.
final class SleepingService: RegistrableRPCService, Sendable {
  static let method = MethodDescriptor(fullyQualifiedService: "test.Sleeping", method: "Sleep")
  let started = Mutex(false)

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    router.registerHandler(
      forMethod: Self.method,
      deserializer: PassthroughBytes(),
      serializer: PassthroughBytes()
    ) { (request: StreamingServerRequest<[UInt8]>, context: ServerContext) in
      self.started.withLock { $0 = true }
      try await Task.sleep(for: .seconds(3600))
      return StreamingServerResponse(single: ServerResponse(message: [UInt8]()))
    }
  }
}

struct PassthroughBytes: MessageSerializer, MessageDeserializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
