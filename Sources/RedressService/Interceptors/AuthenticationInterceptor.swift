public import GRPCCore
import Foundation
public import Logging
import RedressWire
import X509

/// Authenticates every call, applies the caller's rate limit, and binds ``Caller/current`` for the handler.
///
/// A bearer token in `authorization: Bearer <token>` metadata wins over the client certificate, so a
/// tool behind a shared mutual-TLS connection can still act as a person. Health checks are open, so load
/// balancers and Kubernetes probes need no credentials.
public struct AuthenticationInterceptor: ServerInterceptor {
  /// Trailing metadata key on `resourceExhausted` answers: milliseconds until a retry can succeed.
  public static let retryAfterKey = "retry-after-ms"

  /// Failed authentications allowed per remote address: 10 back to back, then 1 per second. Over it, calls
  /// from that address are refused before their credentials are looked at, correct or not.
  public static var failedAuthenticationDefaults: RateLimiter.Config { .init(ratePerSecond: 1, burst: 10) }

  private let directory: IdentityDirectory
  private let rateLimiter: RateLimiter?
  private let serviceRateLimiter: RateLimiter?
  private let failureLimiter: RateLimiter
  private let openMethods: Set<String>
  private let logger: Logger
  private let failureLog = LogThrottle(interval: .seconds(10))

  /// - Parameters:
  ///   - directory: Who may call.
  ///   - rateLimiter: Per-identity limits; `nil` for none.
  ///   - serviceRateLimiter: Per-identity limits for identities with the `service` role (a service hands
  ///     on work in bursts that a person's limit would throttle); `nil` for none.
  ///   - failedAuthentications: Failed authentications allowed per remote address, keyed by address;
  ///     `nil` for ``failedAuthenticationDefaults``.
  ///   - openMethods: Full method paths (`service/method`) callable without credentials.
  public init(
    directory: IdentityDirectory,
    rateLimiter: RateLimiter?,
    serviceRateLimiter: RateLimiter? = nil,
    failedAuthentications: RateLimiter? = nil,
    openMethods: Set<String> = ["grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch"],
    logger: Logger = Logger(label: "redress.auth")
  ) {
    self.directory = directory
    self.rateLimiter = rateLimiter
    self.serviceRateLimiter = serviceRateLimiter
    self.failureLimiter = failedAuthentications ?? RateLimiter(config: Self.failedAuthenticationDefaults)
    self.openMethods = openMethods
    self.logger = logger
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let method = context.descriptor.fullyQualifiedMethod
    if self.openMethods.contains(method) {
      return try await next(request, context)
    }
    // An address over its failed-authentication limit is refused before its credentials are evaluated,
    // so guessing costs time whether a guess is right or wrong.
    let address = Self.address(of: context.remotePeer)
    if case .limited(let retryAfter) = self.failureLimiter.check(for: address) {
      let milliseconds = Int((retryAfter * 1000).rounded(.up))
      throw RPCError(
        code: .resourceExhausted,
        message: "Too many failed authentications from this address; retry after \(milliseconds) ms.",
        metadata: [Self.retryAfterKey: "\(milliseconds)"]
      )
    }
    let identity: Identity
    do {
      identity = try self.authenticate(metadata: request.metadata, peer: context.peerIdentity, method: method)
    } catch {
      _ = self.failureLimiter.acquire(for: address)
      throw error
    }
    let limiter = identity.has(.service) ? self.serviceRateLimiter : self.rateLimiter
    if let limiter, case .limited(let retryAfter) = limiter.acquire(for: identity.name) {
      let milliseconds = Int((retryAfter * 1000).rounded(.up))
      self.logger.notice("rate limited", metadata: ["identity": "\(identity.name)", "method": "\(method)"])
      throw RPCError(
        code: .resourceExhausted,
        message: "Identity '\(identity.name)' is over its rate limit; retry after \(milliseconds) ms.",
        metadata: [Self.retryAfterKey: "\(milliseconds)"]
      )
    }
    let response = try await Caller.$current.withValue(identity) {
      try await next(request, context)
    }
    return response.binding(Caller.$current, to: identity)
  }

  /// The address part of a peer description: `ipv4:10.0.0.7:51234` → `ipv4:10.0.0.7`.
  static func address(of remotePeer: String) -> String {
    guard let colon = remotePeer.lastIndex(of: ":"), remotePeer[remotePeer.index(after: colon)...].allSatisfy(\.isNumber)
    else { return remotePeer }
    return String(remotePeer[..<colon])
  }

  private func authenticate(metadata: Metadata, peer: PeerIdentity?, method: String) throws(RPCError) -> Identity {
    if let header = metadata[stringValues: "authorization"].first(where: { _ in true }) {
      let prefix = "bearer "
      guard header.count > prefix.count, header.lowercased().hasPrefix(prefix) else {
        throw RPCError(
          code: .unauthenticated,
          message: "The 'authorization' metadata must be 'Bearer <token>'."
        )
      }
      let token = String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
      guard let identity = self.directory.identity(bearerToken: token) else {
        // Never log the token, not even a prefix of it; at most one line per 10 s, however many guesses.
        if let suppressed = self.failureLog.admit() {
          self.logger.notice("unknown bearer token", metadata: ["method": "\(method)", "suppressed_since_last": "\(suppressed)"])
        }
        throw RPCError(code: .unauthenticated, message: "The bearer token is not recognised.")
      }
      // The directory refuses tokens for service identities; this holds even for a directory built in code.
      guard !identity.has(.service) else {
        throw RPCError(
          code: .unauthenticated,
          message: "Identity '\(identity.name)' has the service role: it authenticates with its client certificate (mutual TLS), not a token."
        )
      }
      return identity
    }
    if let peer {
      let commonName = peer.certificate.flatMap(Self.commonName(of:))
      let uris = peer.subjectAlternativeNames.filter { $0.contains("://") }
      guard let identity = self.directory.identity(certificateCommonName: commonName, uris: uris) else {
        if let suppressed = self.failureLog.admit() {
          self.logger.notice(
            "unmapped client certificate",
            metadata: ["subject": "\(peer.subject)", "suppressed_since_last": "\(suppressed)"]
          )
        }
        throw RPCError(
          code: .unauthenticated,
          message: "The client certificate '\(peer.subject)' is not mapped to any identity of this service."
        )
      }
      return identity
    }
    throw RPCError(
      code: .unauthenticated,
      message: "This call needs a client certificate or 'authorization: Bearer <token>' metadata."
    )
  }

  private static func commonName(of certificate: Certificate) -> String? {
    for rdn in certificate.subject {
      for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
        return String(describing: attribute.value)
      }
    }
    return nil
  }
}
