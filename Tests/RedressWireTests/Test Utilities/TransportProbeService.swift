import GRPCCore

/// A service of raw-byte methods for probing the transport: messages are exactly the octets
/// written (``RawBytesCodec``), so sizes can be set to the octet around a limit, and its
/// streaming writer reports each write to a ``WriteLog`` so a test can see flow control hold it.
///
/// - `Echo` (unary) answers the request's bytes.
/// - `Fill` (unary) takes a big-endian `UInt64` n and answers n octets of ``pattern(index:size:)``.
/// - `Download` (server streaming) takes big-endian `UInt32` sizes and writes one message per
///   size, message k being `pattern(index: k, size: sizes[k])`, logging each write.
/// - `Decorate` (unary) takes two big-endian `UInt32`s and answers an empty message with initial
///   and trailing metadata `x-filler` values of those lengths (0 for none).
struct TransportProbeService: RegistrableRPCService {
  static let serviceName = "redress.test.TransportProbe"
  static let echo = MethodDescriptor(fullyQualifiedService: serviceName, method: "Echo")
  static let fill = MethodDescriptor(fullyQualifiedService: serviceName, method: "Fill")
  static let download = MethodDescriptor(fullyQualifiedService: serviceName, method: "Download")
  static let decorate = MethodDescriptor(fullyQualifiedService: serviceName, method: "Decorate")
  /// The metadata key `Decorate` fills.
  static let fillerKey = "x-filler"

  /// Where `Download` reports its writes.
  let writeLog: WriteLog

  init(writeLog: WriteLog = WriteLog()) {
    self.writeLog = writeLog
  }

  /// The content of message `index` of a download, or of a `Fill` answer (index 0): its index
  /// in the first four octets, so a reordered or repeated message shows, then a running pattern.
  static func pattern(index: Int, size: Int) -> [UInt8] {
    var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
      for offset in 0..<size {
        buffer[offset] = UInt8(truncatingIfNeeded: index &* 7 &+ offset)
      }
      count = size
    }
    for shift in 0..<min(4, size) {
      bytes[shift] = UInt8(truncatingIfNeeded: index >> (24 - 8 * shift))
    }
    return bytes
  }

  /// The big-endian octets of `values`, each `width` octets long.
  static func encode(_ values: [Int], width: Int) -> [UInt8] {
    values.flatMap { value in
      (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - $0))) }
    }
  }

  /// The values `encode(_:width:)` wrote.
  static func decode(_ bytes: [UInt8], width: Int) throws -> [Int] {
    guard bytes.count % width == 0 else {
      throw RPCError(code: .invalidArgument, message: "expected a multiple of \(width) octets, got \(bytes.count)")
    }
    return stride(from: 0, to: bytes.count, by: width).map { start in
      bytes[start..<start + width].reduce(0) { $0 << 8 | Int($1) }
    }
  }

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    let codec = RawBytesCodec()
    router.registerHandler(forMethod: Self.echo, deserializer: codec, serializer: codec) { request, _ in
      let request = try await ServerRequest(stream: request)
      return StreamingServerResponse(single: ServerResponse(message: request.message))
    }
    router.registerHandler(forMethod: Self.fill, deserializer: codec, serializer: codec) { request, _ in
      let request = try await ServerRequest(stream: request)
      guard let size = try Self.decode(request.message, width: 8).first else {
        throw RPCError(code: .invalidArgument, message: "Fill takes one UInt64")
      }
      return StreamingServerResponse(single: ServerResponse(message: Self.pattern(index: 0, size: size)))
    }
    router.registerHandler(forMethod: Self.decorate, deserializer: codec, serializer: codec) { request, _ in
      let request = try await ServerRequest(stream: request)
      let lengths = try Self.decode(request.message, width: 4)
      guard lengths.count == 2 else {
        throw RPCError(code: .invalidArgument, message: "Decorate takes two UInt32s")
      }
      func filler(_ length: Int) -> Metadata {
        length == 0 ? [:] : [Self.fillerKey: .string(String(repeating: "f", count: length))]
      }
      return StreamingServerResponse(
        single: ServerResponse(message: [], metadata: filler(lengths[0]), trailingMetadata: filler(lengths[1]))
      )
    }
    let log = self.writeLog
    router.registerHandler(forMethod: Self.download, deserializer: codec, serializer: codec) { request, _ in
      let request = try await ServerRequest(stream: request)
      let sizes = try Self.decode(request.message, width: 4)
      return StreamingServerResponse { writer in
        for (index, size) in sizes.enumerated() {
          let message = Self.pattern(index: index, size: size)
          log.writeStarted()
          try await writer.write(message)
          log.writeCompleted()
        }
        log.handlerFinished()
        return [:]
      }
    }
  }
}
