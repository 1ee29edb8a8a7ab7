import ArgumentParser
import Foundation
import GRPCCore
import NIOSSL
import RedressSchemas
import RedressWire

/// `redress health`: asks a service whether it is serving; the Kubernetes probes use it.
struct Health: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check that a service is serving (grpc.health.v1 over the Redress wire); exit 0 if it is.",
    discussion: "Needs no credentials: health checks are open. Exit 0 serving, 1 not serving or unreachable."
  )

  @Option(help: ArgumentHelp("The service's address.", valueName: "host:port")) var address: String
  @Option(help: ArgumentHelp("CA certificate the service's certificate chains to, PEM.", valueName: "path")) var ca: String?
  @Option(name: .customLong("server-name"), help: "The name the service's certificate must carry, if not the host.")
  var serverName: String?
  @Option(help: ArgumentHelp("Deadline in seconds.", valueName: "seconds")) var timeout: Double = 3
  @Flag(name: .customLong("plaintext-for-testing-only"), help: "The service runs without TLS (tests only).")
  var plaintextForTestingOnly = false

  func run() async throws {
    guard let colon = self.address.lastIndex(of: ":"), let port = Int(self.address[self.address.index(after: colon)...]) else {
      throw ValidationError("--address must be host:port.")
    }
    let host = String(self.address[..<colon])
    let security: ClientSecurity
    if self.plaintextForTestingOnly {
      security = .plaintextForTestingOnly
    } else {
      security = .tls(
        ClientTLS(
          trustRoots: try self.ca.map { try NIOSSLCertificate.fromPEMFile($0) },
          serverHostnameOverride: self.serverName
        )
      )
    }
    var options = CallOptions.defaults
    options.timeout = .milliseconds(Int(self.timeout * 1000))
    let transport = try WireClientTransport(host: host, port: port, config: .defaults(security: security))
    do {
      let status = try await withGRPCClient(transport: transport) { client in
        try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init(), options: options).status
      }
      Output.emit("\(status)")
      if status != .serving {
        throw ExitCode.failure
      }
    } catch let error as RPCError {
      Output.error(["not healthy: \(error.message) (\(error.code))"])
      throw ExitCode.failure
    }
  }
}
