import GRPCCore

/// The scenarios, each returning its rows for the table.
enum Suite {
  static let unaryPayload = [UInt8](repeating: 0xA5, count: 1024)

  /// Scenario 1 (unary echo over Redress and HTTP/2) and scenario 2 (the raw TLS floor). For each
  /// connection count and each number in flight the three run back to back, so a ratio compares
  /// measurements taken moments apart on this noisy machine.
  static func unaryAndFloor(plan: Plan, pki: BenchPKI, transports: Bool, floor: Bool) async throws -> [ResultRow] {
    try await TransportKind.redress.withServer(pki: pki) { redressPort in
      try await TransportKind.http2.withServer(pki: pki) { http2Port in
        try await RawTLSEcho.withServer(pki: pki) { floorPort in
          var rows: [ResultRow] = []
          for connections in plan.connections {
            rows += try await TransportKind.redress.withClients(pki: pki, port: redressPort, connections: connections) {
              redress in
              try await TransportKind.http2.withClients(pki: pki, port: http2Port, connections: connections) { http2 in
                var floorConnections: [RawTLSEcho.Connection] = []
                if floor {
                  for _ in 0..<connections {
                    floorConnections.append(try await RawTLSEcho.Connection.connect(port: floorPort, pki: pki))
                  }
                }
                let floorSet = floorConnections
                defer { for connection in floorSet { connection.channel.close(promise: nil) } }

                var rows: [ResultRow] = []
                for inFlight in plan.inFlight {
                  var redressResult: LoadResult?
                  var http2Result: LoadResult?
                  var floorResult: LoadResult?
                  if transports {
                    redressResult = try await runClosedLoop(
                      concurrency: inFlight, warmup: plan.warmup, duration: plan.duration
                    ) { worker in
                      try await redress[worker % redress.count].echo(Self.unaryPayload)
                    }
                    progress("unary Redress  conns \(connections) in flight \(inFlight): \(Int(redressResult!.perSecond)) RPC/s")
                    if !plan.redressOnly {
                      http2Result = try await runClosedLoop(
                        concurrency: inFlight, warmup: plan.warmup, duration: plan.duration
                      ) { worker in
                        try await http2[worker % http2.count].echo(Self.unaryPayload)
                      }
                      progress("unary HTTP/2   conns \(connections) in flight \(inFlight): \(Int(http2Result!.perSecond)) RPC/s")
                    }
                  }
                  if floor {
                    floorResult = try await runClosedLoop(
                      concurrency: inFlight, warmup: plan.warmup, duration: plan.duration
                    ) { worker in
                      try await floorSet[worker % floorSet.count].echo(Self.unaryPayload)
                    }
                    progress("floor raw TLS  conns \(connections) in flight \(inFlight): \(Int(floorResult!.perSecond)) echoes/s")
                  }
                  if let redressResult {
                    rows.append(
                      .latency(
                        scenario: "unary 1 KiB", transport: "Redress", connections: connections, inFlight: inFlight,
                        result: redressResult, unit: "RPC/s", against: http2Result, floor: floorResult
                      )
                    )
                  }
                  if let http2Result {
                    rows.append(
                      .latency(
                        scenario: "unary 1 KiB", transport: "HTTP/2", connections: connections, inFlight: inFlight,
                        result: http2Result, unit: "RPC/s", against: nil, floor: floorResult
                      )
                    )
                  }
                  if let floorResult {
                    rows.append(
                      .latency(
                        scenario: "floor 1 KiB", transport: "raw TLS", connections: connections, inFlight: inFlight,
                        result: floorResult, unit: "echo/s", against: nil, floor: nil
                      )
                    )
                  }
                }
                return rows
              }
            }
          }
          return rows
        }
      }
    }
  }

  /// Scenario 3: server-streaming messages per second over one connection.
  static func streaming(plan: Plan, pki: BenchPKI) async throws -> [ResultRow] {
    var rows: [ResultRow] = []
    var results: [TransportKind: [Int: LoadResult]] = [:]
    for kind in TransportKind.allCases {
      results[kind] = try await kind.withServer(pki: pki) { port in
        try await kind.withClients(pki: pki, port: port, connections: 1) { clients in
          var bySize: [Int: LoadResult] = [:]
          for (size, perRPC) in plan.streamingMessages {
            var result = try await runClosedLoop(
              concurrency: plan.streamsInFlight, warmup: plan.warmup, duration: plan.duration
            ) { _ in
              let received = try await clients[0].stream(perRPC, size)
              guard received == perRPC else {
                throw BenchError("A stream delivered \(received) of \(perRPC) messages.")
              }
            }
            result.operations *= perRPC
            progress("stream \(kind.rawValue) \(size / 1024) KiB: \(Int(result.perSecond)) msg/s")
            bySize[size] = result
          }
          return bySize
        }
      }
    }
    for (size, perRPC) in plan.streamingMessages {
      for kind in TransportKind.allCases {
        let result = results[kind]![size]!
        rows.append(
          .streaming(
            scenario: "stream \(size / 1024) KiB ×\(perRPC)/RPC",
            transport: kind.rawValue,
            streams: plan.streamsInFlight,
            result: result,
            messageSize: size,
            against: kind == .redress ? results[.http2]![size]! : nil
          )
        )
      }
    }
    return rows
  }

  /// Scenario 5 of issue 6: server memory per idle connection, for both transports and the raw TLS floor.
  static func memory(plan: Plan) async throws -> [ResultRow] {
    var results: [IdleMemory.Kind: IdleMemory.Result] = [:]
    for kind in IdleMemory.Kind.allCases {
      let result = try await IdleMemory.measure(kind: kind, connections: plan.idleConnections, log: progress)
      progress("memory \(kind.rawValue): \(String(format: "%.1f", result.perConnectionKiB)) KiB per idle connection")
      results[kind] = result
    }
    return IdleMemory.Kind.allCases.map { kind in
      .memory(
        transport: kind.rawValue,
        result: results[kind]!,
        against: kind == .redress ? results[.http2] : nil
      )
    }
  }
}
