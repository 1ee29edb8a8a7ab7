public import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A TCP forwarder between a test and a real server (PostgreSQL) that the test can cut and restore, to see a
/// service lose its database and find it again without stopping a server other tests share.
///
/// Written here because no served package offers one: SwiftNIO's bootstraps and `NIOAsyncChannel` do the work.
/// While cut, every open connection is closed and new ones are closed as soon as they are accepted.
public final class TCPProxy: Sendable {
  private struct State {
    var up = true
    var open: [ObjectIdentifier: any Channel] = [:]
  }

  private let state = Mutex(State())
  private let upstreamHost: String
  private let upstreamPort: Int
  private let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
  /// Where the proxy listens (on 127.0.0.1).
  public let port: Int

  private init(listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, upstreamHost: String, upstreamPort: Int) {
    self.listener = listener
    self.port = listener.channel.localAddress?.port ?? 0
    self.upstreamHost = upstreamHost
    self.upstreamPort = upstreamPort
  }

  /// Runs `body` with a proxy to `host:port`, listening on a free port of 127.0.0.1.
  public static func with<T: Sendable>(
    to host: String,
    port: Int,
    _ body: (TCPProxy) async throws -> T
  ) async throws -> T {
    let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .bind(host: "127.0.0.1", port: 0) { channel in
        channel.eventLoop.makeCompletedFuture {
          try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
      }
    let proxy = TCPProxy(listener: listener, upstreamHost: host, upstreamPort: port)
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await proxy.accept() }
      defer {
        group.cancelAll()
        proxy.listener.channel.close(promise: nil)
        proxy.cut()
      }
      return try await body(proxy)
    }
  }

  /// Closes every open connection and refuses new ones until ``restore()``.
  public func cut() {
    let open = self.state.withLock { state in
      state.up = false
      defer { state.open = [:] }
      return Array(state.open.values)
    }
    for channel in open { channel.close(promise: nil) }
  }

  /// Forwards new connections again.
  public func restore() {
    self.state.withLock { $0.up = true }
  }

  private func accept() async throws {
    try await withThrowingDiscardingTaskGroup { group in
      try await self.listener.executeThenClose { inbound in
        for try await connection in inbound {
          guard self.state.withLock({ $0.up }) else {
            try? await connection.channel.close()
            continue
          }
          group.addTask { try? await self.forward(connection) }
        }
      }
    }
  }

  private func forward(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
    let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .connect(host: self.upstreamHost, port: self.upstreamPort) { channel in
        channel.eventLoop.makeCompletedFuture {
          try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
      }
    let tracked = self.state.withLock { state -> Bool in
      guard state.up else { return false }
      state.open[ObjectIdentifier(connection.channel)] = connection.channel
      state.open[ObjectIdentifier(upstream.channel)] = upstream.channel
      return true
    }
    guard tracked else {
      try? await connection.channel.close()
      try? await upstream.channel.close()
      return
    }
    try await connection.executeThenClose { clientIn, clientOut in
      try await upstream.executeThenClose { serverIn, serverOut in
        try await withThrowingTaskGroup(of: Void.self) { pipes in
          pipes.addTask { for try await bytes in clientIn { try await serverOut.write(bytes) } }
          pipes.addTask { for try await bytes in serverIn { try await clientOut.write(bytes) } }
          // Either side ending ends both.
          _ = try await pipes.next()
          pipes.cancelAll()
        }
      }
    }
  }
}
