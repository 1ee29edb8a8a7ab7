import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Sends one signed webhook attempt with async-http-client.
///
/// Each attempt resolves the host, checks the address (``WebhookTargetPolicy``) and connects to exactly that
/// address (the client's `dnsOverride`, while TLS still verifies the certificate for the host name), so what was
/// checked is what is reached. Redirects are not followed; a `3xx` is a failed attempt. The attempt is bounded
/// by ``WebhookConfig/requestTimeout`` up to the response head, and the body of the answer is not read (only
/// the status and `Retry-After` count), so a receiver cannot make Redress hold or buffer a large answer.
///
/// Why a client per attempt: pinning the checked address needs the client's `dnsOverride`, a client-wide
/// setting; async-http-client has no per-request resolver hook. Webhook volume is events, not RPCs, so the
/// handshake per attempt is an acceptable cost for closing the rebinding window.
public struct WebhookSender: Sendable {
  let config: WebhookConfig
  let logger: Logger

  public init(config: WebhookConfig, logger: Logger) {
    self.config = config
    self.logger = logger
  }

  /// What one attempt came to.
  public struct Result: Sendable, Hashable {
    /// The HTTP status, 0 when none came.
    public var status: Int
    /// `nil` for a 2xx answer; else what went wrong.
    public var error: String?
    /// A `Retry-After` the receiver sent with a 429 or 503 (capped at ``WebhookConfig/maxRetryAfter``).
    public var retryAfter: Duration?
    public var duration: Duration
  }

  /// Sends `body` to `url`, signed with `secrets` at the current time.
  public func send(
    url: String,
    body: Data,
    eventID: String,
    eventType: String,
    attempt: Int,
    secrets: [String],
    traceHeaders: [String: String] = [:]
  ) async -> Result {
    let clock = ContinuousClock()
    let start = clock.now
    func result(_ status: Int, _ error: String?, retryAfter: Duration? = nil) -> Result {
      Result(status: status, error: error, retryAfter: retryAfter, duration: clock.now - start)
    }
    let target: WebhookTargetPolicy.Target
    let address: SocketAddress
    do {
      target = try self.config.targets.parse(url)
      address = try await self.config.targets.resolve(target)
    } catch {
      return result(0, "refused target: \(error)")
    }
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.minimumTLSVersion = .tlsv12
    if !self.config.additionalTrustRoots.isEmpty {
      tls.additionalTrustRoots = [.certificates(self.config.additionalTrustRoots)]
    }
    let timeout = TimeAmount.nanoseconds(Int64(self.config.requestTimeout.timeInterval * 1e9))
    var configuration = HTTPClient.Configuration(
      tlsConfiguration: tls,
      redirectConfiguration: .disallow,
      timeout: .init(connect: timeout, read: timeout)
    )
    if let ip = address.ipAddress, ip != target.host { configuration.dnsOverride = [target.host: ip] }
    let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    let outcome = await self.post(
      client: client, url: url, body: body, eventID: eventID, eventType: eventType, attempt: attempt, secrets: secrets,
      traceHeaders: traceHeaders, timeout: timeout)
    // Closes the connection; an unread answer is dropped with it.
    try? await client.shutdown()
    return result(outcome.status, outcome.error, retryAfter: outcome.retryAfter)
  }

  private func post(
    client: HTTPClient, url: String, body: Data, eventID: String, eventType: String, attempt: Int, secrets: [String],
    traceHeaders: [String: String], timeout: TimeAmount
  ) async -> (status: Int, error: String?, retryAfter: Duration?) {
    func result(_ status: Int, _ error: String?, retryAfter: Duration? = nil) -> (status: Int, error: String?, retryAfter: Duration?) {
      (status, error, retryAfter)
    }
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.headers.add(name: "User-Agent", value: "Redress-Webhooks/1")
    request.headers.add(name: "Redress-Event-Id", value: eventID)
    request.headers.add(name: "Redress-Event-Type", value: eventType)
    request.headers.add(name: "Redress-Delivery-Attempt", value: "\(attempt)")
    // The delivery's span (W3C `traceparent` with swift-otel), so a receiver can join the trace.
    for (name, value) in traceHeaders { request.headers.add(name: name, value: value) }
    request.headers.add(
      name: WebhookSignature.headerName,
      value: WebhookSignature.header(body: body, timestamp: Int64(Date().timeIntervalSince1970), secrets: secrets))
    request.body = .bytes(ByteBuffer(bytes: body))
    do {
      let response = try await client.execute(request, timeout: timeout, logger: self.logger)
      let status = Int(response.status.code)
      switch status {
      case 200..<300:
        return result(status, nil)
      case 300..<400:
        return result(status, "answered \(status) (a redirect); Redress does not follow redirects: subscribe the final URL")
      case 429, 503:
        let retryAfter = response.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0) }
        return result(status, "answered \(status)", retryAfter: retryAfter)
      default:
        return result(status, "answered \(status)")
      }
    } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
      return result(0, "no answer within \(self.config.requestTimeout)")
    } catch {
      return result(0, "could not deliver: \(error)")
    }
  }

  /// A `Retry-After` value: seconds, or an HTTP date; capped at ``WebhookConfig/maxRetryAfter``.
  public static func retryAfter(_ value: String, now: Date = Date()) -> Duration? {
    let text = value.trimmingCharacters(in: .whitespaces)
    var seconds: Double?
    if let number = Int(text), number >= 0 {
      seconds = Double(number)
    } else {
      let formatter = DateFormatter()
      formatter.locale = Locale(identifier: "en_US_POSIX")
      formatter.timeZone = TimeZone(identifier: "GMT")
      formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
      if let date = formatter.date(from: text) { seconds = max(0, date.timeIntervalSince(now)) }
    }
    guard let seconds else { return nil }
    return .milliseconds(Int64(min(seconds, WebhookConfig.maxRetryAfter.timeInterval) * 1_000))
  }
}
