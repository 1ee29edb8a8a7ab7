import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RedressWire

/// Server memory per idle connection: a server runs in a child process (this executable's
/// `idle-server` subcommand) so its resident set holds nothing of the clients; this process opens
/// `connections` connections that each complete the transport's handshake and then stay idle, and
/// reads the child's VmRSS from /proc before and after.
enum IdleMemory {
  /// What the idle server runs: one of the transports, or the raw TLS echo (the memory floor: SwiftNIO
  /// and NIOSSL with no RPC layer).
  enum Kind: String, CaseIterable, Sendable {
    case redress = "Redress"
    case http2 = "HTTP/2"
    case rawTLS = "raw TLS"

    var argument: String {
      switch self {
      case .redress: "redress"
      case .http2: "http2"
      case .rawTLS: "tls"
      }
    }
  }

  struct Result: Sendable {
    var connections: Int
    var baselineKiB: Int
    var loadedKiB: Int
    var perConnectionKiB: Double { Double(self.loadedKiB - self.baselineKiB) / Double(max(1, self.connections)) }
  }

  static func measure(kind: Kind, connections: Int, log: (String) -> Void) async throws -> Result {
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = ["idle-server", "--transport", kind.argument]
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    defer {
      try? stdin.fileHandleForWriting.close()
      process.waitUntilExit()
    }
    let line = try await readLine(from: stdout.fileHandleForReading)
    guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
      throw BenchError("The idle server printed \(line.debugDescription) instead of its port.")
    }
    let pid = process.processIdentifier
    try await Task.sleep(for: .milliseconds(500))
    let baseline = try residentKiB(pid: pid)

    var tls = TLSConfiguration.makeClientConfiguration()
    // Only the server's memory is measured; verification would just slow the 5,000 handshakes.
    tls.certificateVerification = .none
    switch kind {
    case .redress: tls.applicationProtocols = [WireTLS.alpnIdentifier]
    case .http2: tls.applicationProtocols = ["h2"]
    case .rawTLS: break
    }
    let context = try NIOSSLContext(configuration: tls)

    var channels: [any Channel] = []
    channels.reserveCapacity(connections)
    let batch = 64
    var opened = 0
    while opened < connections {
      let size = min(batch, connections - opened)
      let new = try await withThrowingTaskGroup(of: (any Channel).self) { group in
        for _ in 0..<size {
          group.addTask { try await openIdle(kind: kind, port: port, context: context) }
        }
        var new: [any Channel] = []
        for try await channel in group { new.append(channel) }
        return new
      }
      channels += new
      opened += size
      if opened % 1000 < batch { log("  \(kind.rawValue): \(opened) idle connections open") }
    }
    try await Task.sleep(for: .seconds(1))
    let loaded = try residentKiB(pid: pid)
    let alive = channels.filter(\.isActive).count
    for channel in channels { channel.close(promise: nil) }
    guard alive == connections else {
      throw BenchError("Only \(alive) of \(connections) idle \(kind.rawValue) connections were still open.")
    }
    return Result(connections: connections, baselineKiB: baseline, loadedKiB: loaded)
  }

  /// Connects and completes the handshake: for Redress the preface and SETTINGS exchange
  /// (docs/PROTOCOL.md §3), for HTTP/2 the connection preface and SETTINGS.
  private static func openIdle(kind: Kind, port: Int, context: NIOSSLContext) async throws -> any Channel {
    let hello: [UInt8]
    let ack: [UInt8]
    let expected: Int
    switch kind {
    case .redress:
      // Preface offering version 1, empty SETTINGS; the server answers with its preface and SETTINGS.
      hello = [0x52, 0x44, 0x52, 0x53, 0x0D, 0x0A, 0x01, 0x01] + [0, 0, 0, 0x00, 0, 0, 0, 0, 0]
      ack = [0, 0, 0, 0x00, 0x01, 0, 0, 0, 0]
      expected = 8 + 9
    case .http2:
      hello = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 0x04, 0, 0, 0, 0, 0]
      ack = [0, 0, 0, 0x04, 0x01, 0, 0, 0, 0]
      expected = 9
    case .rawTLS:
      // One 1-octet echo each way, so the connection has carried data as the others have.
      hello = [0, 0, 0, 1, 0x42]
      ack = [0, 0, 0, 1, 0x43]
      expected = 5
    }
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .connectTimeout(.seconds(10))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
          try sync.addHandler(HandshakeHandler(hello: hello, ack: ack, expected: expected))
        }
      }
      .connect(host: "127.0.0.1", port: port)
      .get()
    let done = try await channel.eventLoop.submit {
      try channel.pipeline.syncOperations.handler(type: HandshakeHandler.self).done.futureResult
    }.get()
    try await done.get()
    return channel
  }

  /// Sends `hello` when the connection opens; once `expected` octets came back, sends `ack` and
  /// completes `done`. Everything after is read and dropped.
  private final class HandshakeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let hello: [UInt8]
    let ack: [UInt8]
    let expected: Int
    var received = 0
    var done: EventLoopPromise<Void>!

    init(hello: [UInt8], ack: [UInt8], expected: Int) {
      self.hello = hello
      self.ack = ack
      self.expected = expected
    }

    func handlerAdded(context: ChannelHandlerContext) {
      self.done = context.eventLoop.makePromise()
      if context.channel.isActive { self.sendHello(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
      self.sendHello(context: context)
      context.fireChannelActive()
    }

    private func sendHello(context: ChannelHandlerContext) {
      context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: self.hello)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let before = self.received
      self.received += Self.unwrapInboundIn(data).readableBytes
      if before < self.expected && self.received >= self.expected {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: self.ack)), promise: nil)
        self.done.succeed()
      }
    }

    func channelInactive(context: ChannelHandlerContext) {
      self.done.fail(BenchError("The server closed an idle connection during its handshake."))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      self.done.fail(error)
      context.close(promise: nil)
    }
  }

  /// VmRSS of process `pid`, in KiB.
  static func residentKiB(pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
      if let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
        return kib
      }
    }
    throw BenchError("/proc/\(pid)/status has no VmRSS line.")
  }

  /// Reads one line from `handle` on a thread of its own (the read blocks).
  private static func readLine(from handle: FileHandle) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        var bytes: [UInt8] = []
        while true {
          let chunk = handle.readData(ofLength: 1)
          if chunk.isEmpty || chunk.first == UInt8(ascii: "\n") { break }
          bytes.append(chunk.first!)
        }
        if bytes.isEmpty {
          continuation.resume(throwing: BenchError("The idle server exited before printing its port."))
        } else {
          continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
        }
      }
    }
  }
}
