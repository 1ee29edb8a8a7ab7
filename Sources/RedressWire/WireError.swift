/// A violation of the Redress wire protocol, with the code to answer it with.
///
/// Modelled on GRPCCore's `RPCError`: an extensible code, a message that says what was wrong, and
/// whether it ends one stream or the whole connection.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What an error ends.
  public enum Scope: Hashable, Sendable {
    /// The whole connection: answered with `GOAWAY` and a close.
    case connection
    /// One stream: answered with `RST_STREAM` on that stream; the connection goes on.
    case stream(UInt32)
  }

  /// The code sent to the peer.
  public var code: WireErrorCode
  /// What was wrong. Never contains payload bytes.
  public var message: String
  /// What the error ends.
  public var scope: Scope

  /// Creates an error; connection-scoped unless `stream` is given.
  public init(_ code: WireErrorCode, _ message: String, stream: UInt32? = nil) {
    self.code = code
    self.message = message
    self.scope = stream.map { .stream($0) } ?? .connection
  }

  public var description: String {
    switch self.scope {
    case .connection:
      "connection error \(self.code): \(self.message)"
    case .stream(let id):
      "stream \(id) error \(self.code): \(self.message)"
    }
  }
}
