import CompressNIO
import GRPCCore
import NIOCore

/// Per-message compression for `grpc-encoding` (docs/PROTOCOL.md §7.7), with CompressNIO's zlib.
///
/// gRPC's `deflate` is the zlib format (RFC 1950), as in HTTP content coding; `gzip` is RFC 1952.
enum MessageCompression {
  /// The `grpc-encoding` metadata key.
  static let encodingKey = "grpc-encoding"
  /// The `grpc-accept-encoding` metadata key.
  static let acceptEncodingKey = "grpc-accept-encoding"

  /// The `grpc-encoding` name of an algorithm; `nil` for no compression.
  static func name(of algorithm: GRPCCore.CompressionAlgorithm) -> String? {
    switch algorithm {
    case .gzip: "gzip"
    case .deflate: "deflate"
    default: nil
    }
  }

  /// The algorithm with a `grpc-encoding` name; `.none` for `identity`; `nil` if unknown.
  static func algorithm(named name: String) -> GRPCCore.CompressionAlgorithm? {
    switch name.lowercased() {
    case "gzip": .gzip
    case "deflate": .deflate
    case "identity": GRPCCore.CompressionAlgorithm.none
    default: nil
    }
  }

  /// `grpc-accept-encoding` for a set: the enabled algorithms plus `identity`.
  static func acceptEncoding(_ set: CompressionAlgorithmSet) -> String {
    var names: [String] = []
    if set.contains(.gzip) { names.append("gzip") }
    if set.contains(.deflate) { names.append("deflate") }
    names.append("identity")
    return names.joined(separator: ",")
  }

  /// The algorithms a `grpc-accept-encoding` value names that this implementation knows.
  static func parseAcceptEncoding(_ metadata: Metadata) -> CompressionAlgorithmSet {
    var set: CompressionAlgorithmSet = [.none]
    for value in metadata[stringValues: Self.acceptEncodingKey] {
      for name in value.split(separator: ",") {
        switch self.algorithm(named: name.trimmingCharacters(in: .whitespaces)) {
        case .some(.gzip): set.insert(.gzip)
        case .some(.deflate): set.insert(.deflate)
        default: continue
        }
      }
    }
    return set
  }

  private static func zlib(_ algorithm: GRPCCore.CompressionAlgorithm) -> CompressNIO.CompressionAlgorithm {
    algorithm == .gzip ? .gzip() : .zlib()
  }

  /// Compresses a message.
  static func compress(_ message: ByteBuffer, with algorithm: GRPCCore.CompressionAlgorithm) throws -> ByteBuffer {
    var message = message
    return try message.compress(with: Self.zlib(algorithm))
  }

  /// Why a message could not be decompressed.
  enum DecompressionFailure: Error {
    /// It inflates past the limit; decompression stopped there.
    case tooLarge
    /// It is not valid data for the algorithm.
    case corrupt
  }

  /// Decompresses a message, stopping as soon as the output would pass `limit` octets, so a small
  /// frame that inflates to gigabytes costs at most `limit` octets of memory.
  static func decompress(
    _ message: ByteBuffer,
    with algorithm: GRPCCore.CompressionAlgorithm,
    limit: Int
  ) throws(DecompressionFailure) -> ByteBuffer {
    var message = message
    do {
      let output = try message.decompress(with: Self.zlib(algorithm), maxSize: limit + 1)
      guard output.readableBytes <= limit else { throw DecompressionFailure.tooLarge }
      return output
    } catch let error as CompressNIOError where error == .bufferOverflow {
      throw .tooLarge
    } catch let error as DecompressionFailure {
      throw error
    } catch {
      throw .corrupt
    }
  }
}
