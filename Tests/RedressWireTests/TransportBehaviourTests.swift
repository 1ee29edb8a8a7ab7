import Foundation
import GRPCCore
import NIOCore
import Testing
@testable import RedressWire
import RedressTestSupport

/// The transports under load, under flow control and at their limits, through GRPCCore clients
/// and servers over TLS (docs/PROTOCOL.md §10, §15, §7.6, §14).
///
/// Every wait is on an event, bounded by `withTimeout`; nothing sleeps.
@Suite("Transport behaviour: concurrency, flow control, limits, statuses")
struct TransportBehaviourTests {
  typealias TestService = Grpc_Testing_TestService
  typealias Client = GRPCClient<WireClientTransport>

  static let echoTextKey = InteropTestService.echoInitialMetadataKey
  static let echoBinaryKey = InteropTestService.echoTrailingMetadataKey

  // MARK: - Concurrency

  @Test("1,000 concurrent unary RPCs on one connection each get their own answer, queued past MAX_CONCURRENT_STREAMS")
  func thousandUnaryCallsOnOneConnection() async throws {
    let limit = ConnectionConfig.defaults.maxConcurrentStreams
    // Every call waits in the server until `limit` run at once: the server must reach its limit,
    // and the client must queue the other 744 calls rather than have them refused.
    let recorder = ServerCallRecorder(holdUntilInFlight: limit)
    try await withWireServer(services: [InteropTestService()], interceptors: [recorder]) { server in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        let problems = try await withTimeout(.seconds(60), "1,000 unary RPCs on one connection") {
          try await Self.unaryCalls(on: stub, ids: Array(0..<1000))
        }
        #expect(problems.isEmpty, "\(problems.count) of 1,000 calls went wrong, e.g. \(problems.prefix(3))")
      }
    }
    let summary = recorder.summary
    #expect(summary.calls == 1000)
    #expect(summary.peers.count == 1, "the calls used \(summary.peers.count) connections")
    #expect(summary.maxInFlight == limit, "the server ran \(summary.maxInFlight) calls at once; its limit is \(limit)")
  }

  @Test("1,000 unary RPCs over 50 connections, 20 concurrent on each, each get their own answer")
  func thousandUnaryCallsOverFiftyConnections() async throws {
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [InteropTestService()], interceptors: [recorder]) { server in
      let problems = try await withTimeout(.seconds(60), "1,000 unary RPCs over 50 connections") {
        try await withThrowingTaskGroup(of: [String].self) { group in
          for connection in 0..<50 {
            group.addTask {
              try await server.withClient { client in
                try await Self.unaryCalls(
                  on: TestService.Client(wrapping: client),
                  ids: (0..<20).map { connection * 20 + $0 }
                )
              }
            }
          }
          return try await group.reduce(into: []) { $0 += $1 }
        }
      }
      #expect(problems.isEmpty, "\(problems.count) of 1,000 calls went wrong, e.g. \(problems.prefix(3))")
    }
    let summary = recorder.summary
    #expect(summary.calls == 1000)
    #expect(summary.peers.count == 50, "the calls used \(summary.peers.count) connections, not one per client")
  }

  @Test("unary, client-streaming, server-streaming and bidirectional calls interleaved on one connection all complete correctly")
  func allFourKindsInterleavedOnOneConnection() async throws {
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [InteropTestService()], interceptors: [recorder]) { server in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        let problems = try await withTimeout(.seconds(60), "interleaved calls of all four kinds") {
          try await withThrowingTaskGroup(of: String?.self) { group in
            for round in 0..<25 {
              // Sizes from empty to several frames, different in every call.
              let sizes = [round * 997 + 1, 20_000 + round * 13, round, 40_000 - round * 7]
              group.addTask {
                await Self.problem("unary \(round)") {
                  let size = try await stub.unaryCall(.with { $0.responseSize = Int32(sizes[1]) }) {
                    try $0.message.payload.body.count
                  }
                  return size == sizes[1] ? nil : "answered \(size) octets, asked for \(sizes[1])"
                }
              }
              group.addTask {
                await Self.problem("client streaming \(round)") {
                  let response = try await stub.streamingInputCall { writer in
                    for size in sizes {
                      try await writer.write(.with { $0.payload.body = Data(count: size) })
                    }
                  }
                  let sum = sizes.reduce(0, +)
                  return Int(response.aggregatedPayloadSize) == sum ? nil : "summed \(response.aggregatedPayloadSize), sent \(sum)"
                }
              }
              group.addTask {
                await Self.problem("server streaming \(round)") {
                  let request = Grpc_Testing_StreamingOutputCallRequest.with {
                    $0.responseParameters = sizes.map { size in .with { $0.size = Int32(size) } }
                  }
                  let received = try await stub.streamingOutputCall(request) { response in
                    var received: [Int] = []
                    for try await message in response.messages { received.append(message.payload.body.count) }
                    return received
                  }
                  return received == sizes ? nil : "received sizes \(received), asked for \(sizes)"
                }
              }
              group.addTask {
                await Self.problem("bidirectional \(round)") {
                  let received = try await Self.pingPong(stub, responseSizes: sizes.reversed())
                  return received == sizes.reversed() ? nil : "received sizes \(received), asked for \(Array(sizes.reversed()))"
                }
              }
            }
            return try await group.reduce(into: [String]()) { if let problem = $1 { $0.append(problem) } }
          }
        }
        #expect(problems.isEmpty, "\(problems.count) of 100 calls went wrong, e.g. \(problems.prefix(3))")
      }
    }
    let summary = recorder.summary
    #expect(summary.calls == 100)
    #expect(summary.peers.count == 1, "the calls used \(summary.peers.count) connections")
  }

  // MARK: - Flow control

  @Test("a client that stops reading holds the server's writer back within its stream window, then gets every message in order")
  func slowReaderHoldsTheWriterBack() async throws {
    let messageSize = 64 * 1024
    let messageCount = 32
    let streamWindow = 256 * 1024
    let maxMessageSize = 64 * 1024
    let log = WriteLog()
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [TransportProbeService(writeLog: log)], interceptors: [recorder]) { server in
      try await server.withClient(configure: {
        $0.connection.streamWindowSize = streamWindow
        $0.connection.maxMessageSize = maxMessageSize
      }) { client in
        try await withTimeout(.seconds(30), "a held-back download") {
          let (resume, resumeReading) = AsyncStream.makeStream(of: Void.self)
          try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
            group.addTask {
              try await Self.download(on: client, sizes: Array(repeating: messageSize, count: messageCount), after: resume)
            }

            let heldBack = try await Self.waitUntilHeldBack(log) {
              try await Self.expectEcho(on: client, index: 0, size: 10)
            }
            #expect(!heldBack.finished, "the server wrote all \(messageCount) messages to a client that read none")
            #expect(heldBack.started == heldBack.completed + 1, "no write is held back: \(heldBack)")
            // The client buffers its stream window, plus at most one message credited early.
            #expect(heldBack.completed >= streamWindow / messageSize, "the writer stopped before the window was spent: \(heldBack)")
            #expect(
              heldBack.completed <= (streamWindow + maxMessageSize) / messageSize + 1,
              "the writer got past the stream window: \(heldBack)"
            )

            resumeReading.finish()
            let messages = try await group.next() ?? []
            #expect(messages.count == messageCount)
            for (index, message) in messages.enumerated() where message != TransportProbeService.pattern(index: index, size: messageSize) {
              Issue.record("message \(index) is not the one sent in that place (\(message.count) octets)")
              break
            }
            let final = try await log.wait { $0.finished }
            #expect(final.completed == messageCount)
          }
        }
      }
    }
    #expect(recorder.summary.peers.count == 1)
  }

  @Test("a 3 MiB message held back by a slow reader does not stall small calls on the same connection")
  func heldBackLargeMessageDoesNotStallOthers() async throws {
    let largeSize = 3 * 1024 * 1024
    let log = WriteLog()
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [TransportProbeService(writeLog: log)], interceptors: [recorder]) { server in
      try await server.withClient { client in
        try await withTimeout(.seconds(30), "small calls beside a held-back 3 MiB message") {
          let (resume, resumeReading) = AsyncStream.makeStream(of: Void.self)
          try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
            // The small first message stays unread, so none of the large one's octets are
            // credited: its stream stalls once the 1 MiB stream window is spent.
            group.addTask {
              try await Self.download(on: client, sizes: [1024, largeSize], after: resume)
            }
            let heldBack = try await Self.waitUntilHeldBack(log) {
              try await Self.expectEcho(on: client, index: 0, size: 10)
            }
            #expect(heldBack == WriteLog.Counts(started: 2, completed: 1), "the 3 MiB write is not the one held back: \(heldBack)")

            try await withThrowingTaskGroup(of: Void.self) { small in
              for index in 1...50 {
                small.addTask { try await Self.expectEcho(on: client, index: index, size: index * 100) }
              }
              try await small.waitForAll()
            }
            #expect(log.counts == heldBack, "the 3 MiB write was no longer held back while the small calls ran")

            resumeReading.finish()
            let messages = try await group.next() ?? []
            #expect(messages.map(\.count) == [1024, largeSize])
            #expect(messages.first == TransportProbeService.pattern(index: 0, size: 1024))
            #expect(messages.last == TransportProbeService.pattern(index: 1, size: largeSize))
          }
        }
      }
    }
    #expect(recorder.summary.calls >= 52)
    #expect(recorder.summary.peers.count == 1)
  }

  // MARK: - Message size limits

  @Test("a request above the server's maxMessageSize fails with resourceExhausted naming the limit, and the connection goes on")
  func requestAboveServerMessageLimit() async throws {
    let limit = 64 * 1024
    let recorder = ServerCallRecorder()
    try await withWireServer(
      services: [TransportProbeService()],
      interceptors: [recorder],
      configure: { $0.connection.maxMessageSize = limit }
    ) { server in
      try await server.withClient { client in
        try await withTimeout(.seconds(20), "calls around the server's message limit") {
          let error = await #expect(throws: RPCError.self) {
            try await Self.echo(on: client, Array(repeating: 0xA5, count: 100 * 1024))
          }
          #expect(error?.code == .resourceExhausted)
          #expect(error?.message.contains("\(limit)") == true, "the message does not name the limit: \(error?.message ?? "")")
          // A message of exactly the limit is accepted, on the same connection.
          try await Self.expectEcho(on: client, index: 1, size: limit)
        }
      }
    }
    #expect(recorder.summary.calls == 2)
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after the oversized request")
  }

  @Test("an oversized request arriving with its HEADERS, before the handler reads anything, is still answered resourceExhausted")
  func oversizedRequestBeforeTheHandlerReads() async throws {
    let limit = 64 * 1024
    try await withWireServer(
      services: [TransportProbeService()],
      configure: { $0.connection.maxMessageSize = limit }
    ) { server in
      try await RawWireClient.withConnection(port: server.port) { raw in
        try await raw.handshake()
        // HEADERS and seven 16 KiB fragments in one write: the server sees the message pass the
        // limit in the same read burst as the HEADERS, before GRPCCore reads the metadata.
        let fragment = ByteBuffer(repeating: 0xA5, count: 16_384)
        var frames: [Frame] = [.headers(streamID: 1, path: TransportProbeService.echo.path, metadata: [:], endStream: false)]
        for index in 0..<7 {
          frames.append(.message(streamID: 1, fragment: fragment, flags: index == 6 ? [.endMessage, .endStream] : []))
        }
        try await raw.send(frames)
        let answer = try await raw.answer(on: 1)
        #expect(answer.status?.code == .resourceExhausted, "answered \(answer.frames)")
        #expect(answer.status?.message.contains("\(limit)") == true, "\(answer.status?.message ?? "")")
      }
    }
  }

  @Test("a response above the client's maxMessageSize fails with resourceExhausted naming the limit, and the connection goes on")
  func responseAboveClientMessageLimit() async throws {
    let limit = 64 * 1024
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [TransportProbeService()], interceptors: [recorder]) { server in
      try await server.withClient(configure: { $0.connection.maxMessageSize = limit }) { client in
        try await withTimeout(.seconds(20), "calls around the client's message limit") {
          let error = await #expect(throws: RPCError.self) {
            try await Self.fill(on: client, size: limit + 1)
          }
          #expect(error?.code == .resourceExhausted)
          #expect(error?.message.contains("\(limit)") == true, "the message does not name the limit: \(error?.message ?? "")")
          let answer = try await Self.fill(on: client, size: limit)
          #expect(answer == TransportProbeService.pattern(index: 0, size: limit))
        }
      }
    }
    #expect(recorder.summary.calls == 2)
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after the oversized response")
  }

  @Test("the default message limit is 4 MiB each way: exactly 4 MiB passes, one octet more is resourceExhausted")
  func defaultMessageLimitIsFourMiB() async throws {
    let limit = 4 * 1024 * 1024
    #expect(ConnectionConfig.defaults.maxMessageSize == limit)
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [TransportProbeService()], interceptors: [recorder]) { server in
      try await server.withClient { client in
        try await withTimeout(.seconds(30), "calls around the default message limit") {
          // 4 MiB to the server and 4 MiB back: both sides' limits, exactly.
          try await Self.expectEcho(on: client, index: 4, size: limit)

          let requestError = await #expect(throws: RPCError.self) {
            try await Self.echo(on: client, Array(repeating: 0x5A, count: limit + 1))
          }
          #expect(requestError?.code == .resourceExhausted)
          #expect(requestError?.message.contains("\(limit)") == true, "\(requestError?.message ?? "")")

          let responseError = await #expect(throws: RPCError.self) {
            try await Self.fill(on: client, size: limit + 1)
          }
          #expect(responseError?.code == .resourceExhausted)
          #expect(responseError?.message.contains("\(limit)") == true, "\(responseError?.message ?? "")")

          try await Self.expectEcho(on: client, index: 5, size: 100)
        }
      }
    }
    #expect(recorder.summary.calls == 4)
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after an oversized message")
  }

  // MARK: - Metadata limits and round trips

  @Test("request metadata above the server's MAX_METADATA_SIZE fails only that call with resourceExhausted")
  func requestMetadataAboveServerLimit() async throws {
    let recorder = ServerCallRecorder()
    try await withWireServer(
      services: [InteropTestService(), TransportProbeService()],
      interceptors: [recorder],
      configure: { $0.connection.maxMetadataSize = 1024 }
    ) { server in
      try await server.withClient { client in
        try await Self.expectOnlyThatCallFails(on: client, metadataValueLength: 2048, naming: "MAX_METADATA_SIZE")
      }
    }
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after the oversized metadata")
  }

  @Test(
    "request metadata too large for one HEADERS frame fails only that call with resourceExhausted",
    arguments: [
      // Over the server's MAX_METADATA_SIZE (8,192) and its MAX_FRAME_SIZE (16,384).
      (serverMaxMetadataSize: 8_192, limit: "MAX_METADATA_SIZE"),
      // Within a raised MAX_METADATA_SIZE but over MAX_FRAME_SIZE: HEADERS has no continuation.
      (serverMaxMetadataSize: 65_536, limit: "MAX_FRAME_SIZE"),
    ]
  )
  func requestMetadataAboveServerFrameSize(serverMaxMetadataSize: Int, limit: String) async throws {
    let recorder = ServerCallRecorder()
    try await withWireServer(
      services: [InteropTestService(), TransportProbeService()],
      interceptors: [recorder],
      configure: { $0.connection.maxMetadataSize = serverMaxMetadataSize }
    ) { server in
      try await server.withClient { client in
        try await Self.expectOnlyThatCallFails(on: client, metadataValueLength: 20_000, naming: limit)
      }
    }
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after the oversized metadata")
  }

  @Test(
    "response metadata too large for the client fails only that call",
    arguments: [
      // Initial or trailing metadata over the client's MAX_METADATA_SIZE (8,192 by default)
      // and over its MAX_FRAME_SIZE.
      (initial: 20_000, trailing: 0),
      (initial: 0, trailing: 20_000),
    ]
  )
  func responseMetadataAboveClientLimit(initial: Int, trailing: Int) async throws {
    let recorder = ServerCallRecorder()
    try await withWireServer(services: [InteropTestService(), TransportProbeService()], interceptors: [recorder]) { server in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        try await withTimeout(.seconds(20), "a call with oversized response metadata beside an open call") {
          try await Self.withOpenCall(on: stub) {
            let error = await #expect(throws: RPCError.self) {
              try await client.unary(
                request: ClientRequest(message: TransportProbeService.encode([initial, trailing], width: 4)),
                descriptor: TransportProbeService.decorate,
                serializer: RawBytesCodec(),
                deserializer: RawBytesCodec(),
                options: .defaults
              ) { response in
                _ = try response.message
              }
            }
            // The server answers with a status in place of what the client could not take.
            #expect(error?.code == .internalError, "\(error.map { "\($0.code): \($0.message)" } ?? "")")
            #expect(error?.message.contains("MAX_METADATA_SIZE") == true, "the message does not name the limit: \(error?.message ?? "")")
          }
          try await Self.expectEcho(on: client, index: 1, size: 10)
        }
      }
    }
    #expect(recorder.summary.peers.count == 1, "the client had to reconnect after the oversized response metadata")
  }

  @Test("text and binary metadata, including every octet value and empty values, round-trip in order")
  func metadataRoundTrip() async throws {
    let textValues = ["", "plain", " spaced, with = and : ", "ünïcödé ☺ 😈", String(repeating: "x", count: 1000)]
    let binaryValues: [[UInt8]] = [
      Array(0...255),
      [],
      [0x00],
      Array((0...255).reversed()),
      [0xFF, 0x00, 0x0D, 0x0A, 0x00],
    ]
    var metadata = Metadata()
    for value in textValues { metadata.addString(value, forKey: Self.echoTextKey) }
    for value in binaryValues { metadata.addBinary(value, forKey: Self.echoBinaryKey) }

    try await withWireServer(services: [InteropTestService()]) { server in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        try await withTimeout(.seconds(20), "metadata round trips") { [metadata] in
          // A successful call: text back as initial metadata, binary as trailing metadata.
          try await stub.unaryCall(.with { $0.responseSize = 1 }, metadata: metadata) { response in
            #expect(Array(response.metadata[stringValues: Self.echoTextKey]) == textValues)
            #expect(Array(response.trailingMetadata[binaryValues: Self.echoBinaryKey]) == binaryValues)
            let size = try response.message.payload.body.count
            #expect(size == 1)
          }
          // A failed call carries its trailing metadata too (a trailers-only response).
          let request = Grpc_Testing_SimpleRequest.with {
            $0.responseStatus = .with {
              $0.code = Int32(Status.Code.failedPrecondition.rawValue)
              $0.message = "with metadata"
            }
          }
          let error = await #expect(throws: RPCError.self) {
            try await stub.unaryCall(request, metadata: metadata)
          }
          #expect(error?.code == .failedPrecondition)
          let trailing = error.map { Array($0.metadata[binaryValues: Self.echoBinaryKey]) }
          #expect(trailing == binaryValues)
        }
      }
    }
  }

  // MARK: - Statuses

  @Test("every gRPC status code 1...16 reaches the client with its code and message, unary and streaming")
  func everyStatusCodeReachesTheClient() async throws {
    try await withWireServer(services: [InteropTestService()]) { server in
      try await server.withClient { client in
        let stub = TestService.Client(wrapping: client)
        let problems = try await withTimeout(.seconds(20), "a call per status code") {
          try await withThrowingTaskGroup(of: String?.self) { group in
            for code in 1...16 {
              let message = "status \(code): ✓ ünïcode\tand\nlines"
              let status = Grpc_Testing_EchoStatus.with {
                $0.code = Int32(code)
                $0.message = message
              }
              group.addTask {
                await Self.statusProblem("unary \(code)", expected: code, message: message) {
                  _ = try await stub.unaryCall(.with { $0.responseStatus = status })
                }
              }
              group.addTask {
                await Self.statusProblem("bidirectional \(code)", expected: code, message: message) {
                  try await stub.fullDuplexCall { writer in
                    try await writer.write(.with { $0.responseStatus = status })
                  } onResponse: { response in
                    for try await _ in response.messages {}
                  }
                }
              }
            }
            return try await group.reduce(into: [String]()) { if let problem = $1 { $0.append(problem) } }
          }
        }
        #expect(problems.isEmpty, "\(problems)")
      }
    }
  }
}

// MARK: - Helpers

extension TransportBehaviourTests {
  /// Makes one UnaryCall per id, all at once, asking for `id` octets and an echo of "id"; returns
  /// a description of every call that failed or got someone else's answer.
  fileprivate static func unaryCalls(
    on stub: TestService.Client<WireClientTransport>,
    ids: [Int]
  ) async throws -> [String] {
    try await withThrowingTaskGroup(of: String?.self) { group in
      for id in ids {
        group.addTask {
          await Self.problem("call \(id)") {
            var metadata = Metadata()
            metadata.addString("\(id)", forKey: Self.echoTextKey)
            return try await stub.unaryCall(.with { $0.responseSize = Int32(id) }, metadata: metadata) { response in
              let size = try response.message.payload.body.count
              let echoed = Array(response.metadata[stringValues: Self.echoTextKey])
              guard size == id, echoed == ["\(id)"] else {
                return "answered \(size) octets and echoed \(echoed)"
              }
              return nil
            }
          }
        }
      }
      return try await group.reduce(into: [String]()) { if let problem = $1 { $0.append(problem) } }
    }
  }

  /// Runs `body`, turning a thrown error into a problem description.
  fileprivate static func problem(_ label: String, _ body: () async throws -> String?) async -> String? {
    do {
      return try await body().map { "\(label): \($0)" }
    } catch {
      return "\(label): \(error)"
    }
  }

  /// Runs `body`, which must fail with status `expected` and `message`; returns a description if it does not.
  fileprivate static func statusProblem(
    _ label: String,
    expected: Int,
    message: String,
    _ body: () async throws -> Void
  ) async -> String? {
    do {
      try await body()
      return "\(label): succeeded"
    } catch let error as RPCError {
      guard error.code.rawValue == expected, error.message == message else {
        return "\(label): got \(error.code) '\(error.message)'"
      }
      return nil
    } catch {
      return "\(label): \(error)"
    }
  }

  /// A bidirectional call answering each request before the next is sent; returns the sizes of
  /// the answers.
  fileprivate static func pingPong(
    _ stub: TestService.Client<WireClientTransport>,
    responseSizes: [Int]
  ) async throws -> [Int] {
    let (answers, answered) = AsyncStream.makeStream(of: Int.self)
    return try await stub.fullDuplexCall { writer in
      var answerIterator = answers.makeAsyncIterator()
      for size in responseSizes {
        try await writer.write(
          .with {
            $0.responseParameters = [.with { $0.size = Int32(size) }]
            $0.payload.body = Data(count: size / 2)
          }
        )
        _ = await answerIterator.next()
      }
    } onResponse: { response in
      var received: [Int] = []
      for try await message in response.messages {
        received.append(message.payload.body.count)
        answered.yield(message.payload.body.count)
      }
      answered.finish()
      return received
    }
  }

  /// Runs `body` while a bidirectional call stays open on the client's connection: one exchange
  /// before `body`, one after. The second exchange proves the open stream survived.
  fileprivate static func withOpenCall(
    on stub: TestService.Client<WireClientTransport>,
    _ body: () async throws -> Void
  ) async throws {
    let (answers, answered) = AsyncStream.makeStream(of: Int.self)
    let (proceed, proceeding) = AsyncStream.makeStream(of: Void.self)
    try await withThrowingTaskGroup(of: [Int].self) { group in
      group.addTask {
        try await stub.fullDuplexCall { writer in
          try await writer.write(.with { $0.responseParameters = [.with { $0.size = 11 }] })
          for await _ in proceed {}
          try await writer.write(.with { $0.responseParameters = [.with { $0.size = 22 }] })
        } onResponse: { response in
          var received: [Int] = []
          for try await message in response.messages {
            received.append(message.payload.body.count)
            answered.yield(message.payload.body.count)
          }
          return received
        }
      }
      var iterator = answers.makeAsyncIterator()
      let first = await iterator.next()
      #expect(first == 11, "the open call's first exchange failed")
      try await body()
      proceeding.finish()
      let received = try await group.next()
      #expect(received == [11, 22], "the open call did not survive")
    }
  }

  /// A call whose request metadata has a value of `metadataValueLength` octets fails with
  /// `resourceExhausted` naming the `limit` it broke, while a call open before it goes on and
  /// the next call works.
  fileprivate static func expectOnlyThatCallFails(on client: Client, metadataValueLength: Int, naming limit: String) async throws {
    let stub = TestService.Client(wrapping: client)
    try await withTimeout(.seconds(20), "a call with oversized metadata beside an open call") {
      try await Self.expectEcho(on: client, index: 0, size: 10)
      try await Self.withOpenCall(on: stub) {
        let metadata: Metadata = ["x-large": .string(String(repeating: "m", count: metadataValueLength))]
        let error = await #expect(throws: RPCError.self) {
          _ = try await Self.echo(on: client, [1, 2, 3], metadata: metadata)
        }
        #expect(error?.code == .resourceExhausted, "\(error.map { "\($0.code): \($0.message)" } ?? "")")
        #expect(error?.message.contains(limit) == true, "the message does not name \(limit): \(error?.message ?? "")")
      }
      try await Self.expectEcho(on: client, index: 1, size: 10)
    }
  }

  /// Calls `Echo` with `message`.
  fileprivate static func echo(on client: Client, _ message: [UInt8], metadata: Metadata = [:]) async throws -> [UInt8] {
    try await client.unary(
      request: ClientRequest(message: message, metadata: metadata),
      descriptor: TransportProbeService.echo,
      serializer: RawBytesCodec(),
      deserializer: RawBytesCodec(),
      options: .defaults
    ) { try $0.message }
  }

  /// Echoes `pattern(index:size:)` and records an issue unless the same octets come back.
  fileprivate static func expectEcho(on client: Client, index: Int, size: Int) async throws {
    let sent = TransportProbeService.pattern(index: index, size: size)
    let echoed = try await Self.echo(on: client, sent)
    #expect(echoed == sent, "echo \(index) of \(size) octets came back as \(echoed.count) other octets")
  }

  /// Calls `Fill` for `size` octets.
  fileprivate static func fill(on client: Client, size: Int) async throws -> [UInt8] {
    try await client.unary(
      request: ClientRequest(message: TransportProbeService.encode([size], width: 8)),
      descriptor: TransportProbeService.fill,
      serializer: RawBytesCodec(),
      deserializer: RawBytesCodec(),
      options: .defaults
    ) { try $0.message }
  }

  /// Calls `Download` for messages of `sizes`, reading none of them until `resume` finishes.
  fileprivate static func download(on client: Client, sizes: [Int], after resume: AsyncStream<Void>) async throws -> [[UInt8]] {
    try await client.serverStreaming(
      request: ClientRequest(message: TransportProbeService.encode(sizes, width: 4)),
      descriptor: TransportProbeService.download,
      serializer: RawBytesCodec(),
      deserializer: RawBytesCodec(),
      options: .defaults
    ) { response in
      for await _ in resume {}
      var messages: [[UInt8]] = []
      for try await message in response.messages { messages.append(message) }
      return messages
    }
  }

  /// Waits until the writer `log` watches is held back: a write started and did not complete,
  /// and the counts stayed the same across five round trips through the server (`tick`), which
  /// a write the transport lets through would not survive. Returns early, with `finished` set, if
  /// the writer was never held back.
  fileprivate static func waitUntilHeldBack(
    _ log: WriteLog,
    tick: () async throws -> Void
  ) async throws -> WriteLog.Counts {
    var previous = try await log.wait { $0.started > $0.completed || $0.finished }
    while true {
      for _ in 0..<5 { try await tick() }
      let now = log.counts
      if now.finished || (now == previous && now.started > now.completed) { return now }
      previous = now
    }
  }
}
