public import Foundation
import Crypto
public import SwiftProtobuf

/// An opaque page token: where the previous page ended, bound to the filters it was made for.
///
/// Tokens are base64url JSON, not encrypted: they only carry a position in the caller's own tenant's
/// results (every query is tenant-scoped server side), so reading one reveals nothing. A token reused with
/// different filters is refused rather than silently giving a wrong page.
public struct PageToken: Sendable, Hashable, Codable {
  /// The sort key of the last item returned (e.g. received-at in microseconds).
  public var afterSortKey: Int64
  /// The id of the last item returned; breaks ties in the sort key.
  public var afterID: String
  /// ``fingerprint(of:)`` of the filters the token was made for.
  public var filters: String

  public init(afterSortKey: Int64, afterID: String, filters: String) {
    self.afterSortKey = afterSortKey
    self.afterID = afterID
    self.filters = filters
  }

  /// A short stable fingerprint of a request's filters (pass a canonical description of them, e.g. the
  /// request with page_size and page_token cleared, serialized deterministically).
  public static func fingerprint(of canonicalFilters: Data) -> String {
    SHA256.hash(data: canonicalFilters).prefix(12).map { String(format: "%02x", $0) }.joined()
  }

  /// The fingerprint of a list request's filters in `tenant`: `request` with its page fields cleared by
  /// `clearPaging`, serialized deterministically.
  public static func fingerprint<Request: SwiftProtobuf.Message>(
    of request: Request, tenant: String, clearPaging: (inout Request) -> Void
  ) -> String {
    var canonical = request
    clearPaging(&canonical)
    var options = BinaryEncodingOptions()
    options.useDeterministicOrdering = true
    let filterBytes: Data = (try? canonical.serializedBytes(options: options)) ?? Data()
    return Self.fingerprint(of: Data(tenant.utf8) + filterBytes)
  }

  /// The token as text for a response's next_page_token.
  public func encoded() -> String {
    let json = (try? JSONEncoder().encode(self)) ?? Data()
    return json.base64EncodedString()
      .replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  /// Decodes a request's page_token.
  ///
  /// - Returns: `nil` for an empty token (first page).
  /// - Throws: ``Invalid`` if the token is malformed or was made for other filters.
  public static func decode(_ text: String, expectedFilters: String) throws(Invalid) -> PageToken? {
    if text.isEmpty { return nil }
    guard text.utf8.count <= 1024 else {
      throw Invalid(reason: "page_token is not a token this service issued; start again without one")
    }
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    guard text.count <= 1024, let data = Data(base64Encoded: base64),
      let token = try? JSONDecoder().decode(PageToken.self, from: data)
    else {
      throw Invalid(reason: "page_token is not a token this service issued; start again without one")
    }
    guard token.filters == expectedFilters else {
      throw Invalid(reason: "page_token was issued for different filters; repeat the same filters or start again")
    }
    return token
  }

  /// Why a page token was refused; map to `invalidArgument` on field `page_token`.
  public struct Invalid: Error, Sendable, Hashable {
    public var reason: String
  }
}
