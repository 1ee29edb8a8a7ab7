import GRPCCore
import NIOCore
import Synchronization

/// A Sendable reference to a ``ConnectionHandler`` that runs work on its event loop.
struct ConnectionHandle: Sendable {
  let handler: NIOLoopBound<ConnectionHandler>

  var eventLoop: any EventLoop { self.handler.eventLoop }

  /// Runs `body` with the handler on its event loop.
  func execute(_ body: @escaping @Sendable (ConnectionHandler) -> Void) {
    if self.eventLoop.inEventLoop {
      body(self.handler.value)
    } else {
      self.eventLoop.execute {
        body(self.handler.value)
      }
    }
  }
}

/// One stream as seen from the async side: writes parts, ends the stream.
struct StreamHandle: Sendable {
  let key: UInt64
  let connection: ConnectionHandle

  /// Queues a part. Messages wait until fully handed to the channel, so a peer whose windows
  /// are closed holds the writer back instead of growing a buffer; other parts do not wait.
  func write(_ item: OutboundItem) async throws {
    let key = self.key
    switch item {
    case .message:
      let promise = self.connection.eventLoop.makePromise(of: Void.self)
      self.connection.execute { handler in
        handler.enqueue(key: key, item: item, promise: promise)
        handler.scheduleFlush()
      }
      try await promise.futureResult.get()
    case .headers, .endStream, .trailers:
      self.connection.execute { handler in
        handler.enqueue(key: key, item: item, promise: nil)
        handler.scheduleFlush()
      }
    }
  }

  /// Queues a message, compressed first if the stream agreed an algorithm.
  func writeMessage(_ message: ByteBuffer, compression: CompressionAlgorithm?) async throws {
    if let compression {
      try await self.write(.message(MessageCompression.compress(message, with: compression), compressed: true))
    } else {
      try await self.write(.message(message, compressed: false))
    }
  }

  /// Ends the stream if it has not ended: a client resets it with `CANCEL`.
  func close() {
    let key = self.key
    self.connection.execute { handler in
      handler.closeStream(key: key)
    }
  }
}

/// The server's side of a stream: writes GRPCCore's response parts as frames.
struct ServerStreamWriter: ClosableRPCWriterProtocol {
  typealias Element = RPCResponsePart<WireBytes>

  let handle: StreamHandle
  /// The algorithm responses are compressed with, agreed when the stream opened; `nil` for none.
  let compression: CompressionAlgorithm?
  /// Set once the status is queued, after which ending the stream from here has nothing to do.
  let completion: StreamCompletion

  func write(_ element: RPCResponsePart<WireBytes>) async throws {
    switch element {
    case .metadata(var metadata):
      if let compression, let name = MessageCompression.name(of: compression) {
        metadata.replaceOrAddString(name, forKey: MessageCompression.encodingKey)
      }
      try await self.handle.write(.headers(path: "", metadata: metadata))
    case .message(let bytes):
      try await self.handle.writeMessage(bytes.buffer, compression: self.compression)
    case .status(let status, let metadata):
      try await self.handle.write(.trailers(status, metadata))
      self.completion.markStatusQueued()
    }
  }

  func write(contentsOf elements: some Sequence<RPCResponsePart<WireBytes>>) async throws {
    for element in elements {
      try await self.write(element)
    }
  }

  func finish() async {
    self.completion.close(self.handle)
  }

  func finish(throwing error: any Error) async {
    self.completion.close(self.handle)
  }
}

/// Whether a server stream's status is queued, shared by its writer and the task that runs its handler.
///
/// Ending a stream (``StreamHandle/close()``) is a hop to the event loop; once the trailers are queued it
/// is a no-op there (`closeStream` returns for a server stream that closed locally: the trailers end it
/// when they leave). Skipping it saves the hop, twice per RPC (GRPCCore's `finish()` and the transport's
/// own close after the handler returns).
final class StreamCompletion: Sendable {
  private let statusQueued = Atomic<Bool>(false)

  init() {}

  func markStatusQueued() {
    self.statusQueued.store(true, ordering: .releasing)
  }

  /// Ends the stream through `handle` unless its status is already queued.
  func close(_ handle: StreamHandle) {
    if !self.statusQueued.load(ordering: .acquiring) {
      handle.close()
    }
  }
}

/// The client's side of a stream: writes GRPCCore's request parts as frames.
struct ClientStreamWriter: ClosableRPCWriterProtocol {
  typealias Element = RPCRequestPart<WireBytes>

  let handle: StreamHandle
  let path: String
  /// The algorithm requests are compressed with; `nil` for none.
  let compression: CompressionAlgorithm?
  /// The `grpc-accept-encoding` value advertised with the request.
  let acceptEncoding: String

  func write(_ element: RPCRequestPart<WireBytes>) async throws {
    switch element {
    case .metadata(var metadata):
      if let compression, let name = MessageCompression.name(of: compression) {
        metadata.replaceOrAddString(name, forKey: MessageCompression.encodingKey)
      }
      metadata.replaceOrAddString(self.acceptEncoding, forKey: MessageCompression.acceptEncodingKey)
      try await self.handle.write(.headers(path: self.path, metadata: metadata))
    case .message(let bytes):
      try await self.handle.writeMessage(bytes.buffer, compression: self.compression)
    }
  }

  func write(contentsOf elements: some Sequence<RPCRequestPart<WireBytes>>) async throws {
    for element in elements {
      try await self.write(element)
    }
  }

  func finish() async {
    try? await self.handle.write(.endStream)
  }

  func finish(throwing error: any Error) async {
    self.handle.close()
  }
}

/// A stream a server connection accepted, handed to the transport's accept loop.
struct ServerStreamStart: Sendable {
  let descriptor: MethodDescriptor
  let inbound: InboundQueue<RPCRequestPart<WireBytes>>
  let handle: StreamHandle
  let cancellation: CancellationSlot
  /// The algorithm to compress responses with, if the client accepts one the server uses.
  let responseCompression: CompressionAlgorithm?
  let peer: PeerIdentity?
  let remoteAddress: String
  let localAddress: String
}

extension MethodDescriptor {
  /// Parses `/package.Service/Method`; `nil` if the path has another shape.
  init?(path: String) {
    guard path.utf8.first == UInt8(ascii: "/") else { return nil }
    let parts = path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
    self.init(
      fullyQualifiedService: String(Substring(parts[0])),
      method: String(Substring(parts[1]))
    )
  }

  /// `/package.Service/Method`.
  var path: String {
    "/\(self.service.fullyQualifiedService)/\(self.method)"
  }
}
