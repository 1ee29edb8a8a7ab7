/// A 32-bit error code carried by `RST_STREAM` and `GOAWAY` frames (docs/PROTOCOL.md §9).
public struct WireErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The code as it travels on the wire.
  public var rawValue: UInt32

  /// Wraps a raw code; codes this version does not define are kept and treated as `internalError`.
  public init(rawValue: UInt32) {
    self.rawValue = rawValue
  }

  /// Graceful close or a reset that reports no problem.
  public static let noError = Self(rawValue: 0x0)
  /// The peer broke a rule of the protocol.
  public static let protocolError = Self(rawValue: 0x1)
  /// The sender failed for a reason of its own.
  public static let internalError = Self(rawValue: 0x2)
  /// The peer broke flow control: sent past a window, or overflowed one.
  public static let flowControlError = Self(rawValue: 0x3)
  /// The preface and first `SETTINGS` did not arrive within the handshake timeout.
  public static let handshakeTimeout = Self(rawValue: 0x4)
  /// A frame arrived for a stream that was already closed.
  public static let streamClosed = Self(rawValue: 0x5)
  /// A frame was longer than the receiver's `MAX_FRAME_SIZE`, or had the wrong fixed size.
  public static let frameSizeError = Self(rawValue: 0x6)
  /// The stream was not processed at all; the client may retry it safely.
  public static let refusedStream = Self(rawValue: 0x7)
  /// The stream is no longer wanted (client cancellation).
  public static let cancel = Self(rawValue: 0x8)
  /// The peer is generating excessive load (reset or ping floods).
  public static let enhanceYourCalm = Self(rawValue: 0x9)
  /// The preface offered no protocol version the server speaks.
  public static let versionUnsupported = Self(rawValue: 0xA)
  /// A metadata block was larger than the receiver's `MAX_METADATA_SIZE`.
  public static let metadataTooLarge = Self(rawValue: 0xB)
  /// A message was larger than the receiver accepts.
  public static let messageTooLarge = Self(rawValue: 0xC)

  public var description: String {
    switch self {
    case .noError: "NO_ERROR"
    case .protocolError: "PROTOCOL_ERROR"
    case .internalError: "INTERNAL_ERROR"
    case .flowControlError: "FLOW_CONTROL_ERROR"
    case .handshakeTimeout: "HANDSHAKE_TIMEOUT"
    case .streamClosed: "STREAM_CLOSED"
    case .frameSizeError: "FRAME_SIZE_ERROR"
    case .refusedStream: "REFUSED_STREAM"
    case .cancel: "CANCEL"
    case .enhanceYourCalm: "ENHANCE_YOUR_CALM"
    case .versionUnsupported: "VERSION_UNSUPPORTED"
    case .metadataTooLarge: "METADATA_TOO_LARGE"
    case .messageTooLarge: "MESSAGE_TOO_LARGE"
    default: "UNKNOWN(0x\(String(self.rawValue, radix: 16)))"
    }
  }
}
