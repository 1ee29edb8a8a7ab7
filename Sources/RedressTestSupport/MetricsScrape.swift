import AsyncHTTPClient
import NIOCore
public import NIOSSL

/// One `GET /metrics` (or another path) of a service's metrics endpoint over HTTPS, as a Prometheus server would
/// make it: trusting `trustRoot`, with `token` as a bearer token if given.
public struct MetricsScrape: Sendable {
  public var status: UInt
  public var contentType: String
  public var body: String

  /// An exposition read some other way (a registry in the test process).
  public init(status: UInt, contentType: String, body: String) {
    self.status = status
    self.contentType = contentType
    self.body = body
  }

  /// Scrapes `https://localhost:port/path`.
  public static func get(
    port: Int, trustRoot: NIOSSLCertificate, token: String?, path: String = "/metrics"
  ) async throws -> MetricsScrape {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .certificates([trustRoot])
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(10))
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
      var request = HTTPClientRequest(url: "https://localhost:\(port)\(path)")
      if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
      let response = try await client.execute(request, timeout: .seconds(10))
      let body = try await response.body.collect(upTo: 4 << 20)
      try await client.shutdown()
      return MetricsScrape(
        status: response.status.code, contentType: response.headers.first(name: "Content-Type") ?? "",
        body: String(buffer: body))
    } catch {
      try? await client.shutdown()
      throw error
    }
  }

  /// The value of the series `name{labels}` exactly as the exposition prints it (labels in their order), or nil.
  public func value(_ series: String) -> Double? {
    for line in self.body.split(separator: "\n") where line.hasPrefix(series + " ") {
      return Double(line.dropFirst(series.count + 1))
    }
    return nil
  }
}
