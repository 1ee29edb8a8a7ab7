public import GRPCNIOTransportHTTP2
import GRPCCore
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
public import RedressWire

/// Standard gRPC over HTTP/2 (grpc-swift-nio-transport), next to the Redress wire, for clients in languages with
/// a gRPC library (grpcio, grpc-go, grpc-java, grpcurl…) and no Redress wire (docs/CLIENTS.md).
///
/// Off unless configured. The same services and interceptors answer on it (authentication, tenancy, rate limits,
/// validation, errors), with the wire's limits carried over as far as the HTTP/2 transport has them; what it
/// lacks is added here (connection caps, the server's inbound budget, the request-arrival timeout) and the rest
/// is listed in docs/SECURITY.md. Client certificates are not used on this listener: the transport can either
/// require one from every client or not verify them at all, so callers authenticate with bearer tokens, and
/// identities that authenticate only by certificate (services) keep to the Redress wire.
public struct GRPCHTTP2Listener: Sendable {
  /// Address to listen on.
  public var host: String
  /// Port; 0 picks a free one.
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// The transport for this listener, secured and limited like the wire server configured by `config`.
  func makeTransport(config: RedressServer.Config, logger: Logger) throws -> HTTP2ServerTransport.Posix {
    let security: HTTP2ServerTransport.Posix.TransportSecurity
    switch config.security {
    case .plaintextForTestingOnly:
      security = .plaintext
    case .tls(let tls):
      let chain: [TLSConfig.CertificateSource] = try tls.certificateChain.map {
        TLSConfig.CertificateSource.bytes(try $0.toDERBytes(), format: .der)
      }
      security = .tls(
        certificateChain: chain,
        privateKey: TLSConfig.PrivateKeySource.bytes(try tls.privateKey.derBytes, format: .der)
      ) { tls in
        // See the type's documentation: certificates are neither requested nor trusted here.
        tls.clientCertificateVerification = .noVerification
        tls.requireALPN = false
      }
    }
    let wire = config.connection
    let admission = ConnectionAdmission(
      maxConnections: config.limits.maxConnections,
      maxPerAddress: config.limits.maxConnectionsPerAddress
    )
    let budget = InboundBudget(serverLimit: config.limits.maxBufferedInboundBytes)
    let refusals = LogThrottle(interval: .seconds(10))
    let requestTimeout = wire.requestTimeout
    let transportConfig = HTTP2ServerTransport.Posix.Config.defaults { transport in
      transport.rpc.maxRequestPayloadSize = wire.maxMessageSize
      transport.http2.maxConcurrentStreams = wire.maxConcurrentStreams
      transport.http2.maxFrameSize = max(wire.maxFrameSize, 16_384)
      transport.connection.maxIdleTime = wire.idleTimeout
      transport.compression.enabledAlgorithms = wire.compression.enabledAlgorithms
      transport.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
        let key = ConnectionAdmission.key(channel.remoteAddress)
        if let refusal = admission.admit(key) {
          if refusals.admit() != nil {
            logger.notice("gRPC HTTP/2 connection refused", metadata: ["peer": "\(key)", "limit": "\(refusal)"])
          }
          return channel.eventLoop.makeFailedFuture(RPCError(code: .resourceExhausted, message: "connection cap reached"))
        }
        channel.closeFuture.whenComplete { _ in admission.release(key) }
        return channel.eventLoop.makeSucceededVoidFuture()
      }
      transport.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in
        stream.eventLoop.makeCompletedFuture {
          try stream.pipeline.syncOperations.addHandler(
            HTTP2RequestGuard(budget: budget, requestTimeout: requestTimeout),
            position: .first
          )
        }
      }
    }
    return HTTP2ServerTransport.Posix(
      address: .ipv4(host: self.host, port: self.port),
      transportSecurity: security,
      config: transportConfig
    )
  }
}

/// Guards one HTTP/2 stream's request the way the Redress wire guards its own (docs/SECURITY.md): the octets of a
/// message still arriving count against the server's inbound budget, and a stream whose first message has not
/// fully arrived within the request timeout is answered `DEADLINE_EXCEEDED`. Either refusal is a trailers-only
/// gRPC response with the reason, sent from here, and the rest of the request is dropped.
///
/// Hand-written because grpc-swift-nio-transport has neither limit: it buffers each stream's message up to the
/// maximum payload size, so 256 streams × 4 MiB on every connection would otherwise be accepted from anyone. The
/// gRPC length prefixes are followed (five octets: flag, length) so that, as on the wire, a message's octets are
/// released once it is whole and handed on, and a long client stream (`SubmitIncidents`) is not held to the
/// timeout after its first message.
final class HTTP2RequestGuard: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias InboundOut = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  private let budget: InboundBudget
  private let requestTimeout: Duration?
  /// Octets reserved: those of the message still arriving.
  private var reserved = 0
  /// Octets of the length prefix read so far (0–5) and the length it gives.
  private var prefixRead = 0
  private var messageLength = 0
  /// Payload octets of the current message still to come, once its prefix is read.
  private var payloadLeft = 0
  private var firstMessageArrived = false
  private var refused = false
  private var timer: Scheduled<Void>?

  init(budget: InboundBudget, requestTimeout: Duration?) {
    self.budget = budget
    self.requestTimeout = requestTimeout
  }

  func handlerAdded(context: ChannelHandlerContext) {
    guard let timeout = self.requestTimeout else { return }
    self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
      self.timer = nil
      guard !self.firstMessageArrived, !self.refused else { return }
      self.refuse(
        context: context,
        code: .deadlineExceeded,
        message: "The request did not arrive within the server's request timeout of \(timeout) "
          + "(from its HEADERS to the end of its first message); send the request promptly after opening the stream."
      )
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.releaseAll()
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.releaseAll()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let payload = self.unwrapInboundIn(data)
    if self.refused { return }
    switch payload {
    case .headers(let headers):
      if headers.endStream { self.requestArrived() }
    case .data(let frame):
      guard case .byteBuffer(let octets) = frame.data else { break }
      if octets.readableBytes > 0 {
        if let refusal = self.budget.reserve(octets.readableBytes) {
          self.refuse(context: context, code: .resourceExhausted, message: refusal.message)
          return
        }
        self.reserved += octets.readableBytes
        let partial = self.follow(octets)
        // Whole messages go on to the transport, which hands them to the handler; what is kept is the part of a
        // message still arriving.
        self.budget.release(self.reserved - partial)
        self.reserved = partial
      }
      if frame.endStream { self.requestArrived() }
    default:
      break
    }
    context.fireChannelRead(data)
  }

  /// Follows the length-prefixed messages in `octets`; returns how many octets of an unfinished message (prefix
  /// included) are held once they are read.
  private func follow(_ octets: ByteBuffer) -> Int {
    var left = octets.readableBytes
    var index = octets.readerIndex
    var partial = self.reserved - octets.readableBytes
    while left > 0 {
      if self.prefixRead < 5 {
        let byte = octets.getInteger(at: index, as: UInt8.self) ?? 0
        if self.prefixRead >= 1 { self.messageLength = self.messageLength << 8 | Int(byte) }
        self.prefixRead += 1
        index += 1
        left -= 1
        partial += 1
        if self.prefixRead == 5 {
          self.payloadLeft = self.messageLength
          if self.payloadLeft == 0 { self.messageEnded(&partial) }
        }
      } else {
        let take = min(left, self.payloadLeft)
        self.payloadLeft -= take
        index += take
        left -= take
        partial += take
        if self.payloadLeft == 0 { self.messageEnded(&partial) }
      }
    }
    return partial
  }

  private func messageEnded(_ partial: inout Int) {
    self.prefixRead = 0
    self.messageLength = 0
    partial = 0
    self.requestArrived()
  }

  /// The first message (or the end of the request) arrived: the timer stops.
  private func requestArrived() {
    self.firstMessageArrived = true
    self.timer?.cancel()
    self.timer = nil
  }

  private func releaseAll() {
    self.timer?.cancel()
    self.timer = nil
    self.budget.release(self.reserved)
    self.reserved = 0
  }

  /// Answers with a trailers-only response carrying `code` and `message`, and closes the stream.
  private func refuse(context: ChannelHandlerContext, code: Status.Code, message: String) {
    self.refused = true
    self.releaseAll()
    let headers: HPACKHeaders = [
      ":status": "200",
      "content-type": "application/grpc",
      "grpc-status": "\(code.rawValue)",
      "grpc-message": Self.percentEncoded(message),
    ]
    context.writeAndFlush(self.wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
    context.close(promise: nil)
  }

  /// `grpc-message` is percent-encoded (gRPC over HTTP/2: every octet outside 0x20–0x7E, and '%').
  static func percentEncoded(_ text: String) -> String {
    var encoded = ""
    for byte in text.utf8 {
      if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
        encoded.unicodeScalars.append(UnicodeScalar(byte))
      } else {
        let hex = Array("0123456789ABCDEF".utf8)
        encoded.unicodeScalars.append("%")
        encoded.unicodeScalars.append(UnicodeScalar(hex[Int(byte >> 4)]))
        encoded.unicodeScalars.append(UnicodeScalar(hex[Int(byte & 0x0F)]))
      }
    }
    return encoded
  }
}
