import ArgumentParser
import Foundation
import RedressClient

/// Where the services are and who the caller is. Flags win over REDRESS_* environment variables, which win
/// over the profile file.
struct ConnectionOptions: ParsableArguments {
  @Option(help: ArgumentHelp("Profile file with addresses, CA and credentials. [env: REDRESS_PROFILE; default: ./redress-data/client.json]", valueName: "path"))
  var profile: String?

  @Option(help: ArgumentHelp("Intake address. [env: REDRESS_INTAKE]", valueName: "host:port"))
  var intake: String?

  @Option(help: ArgumentHelp("Remediation address. [env: REDRESS_REMEDIATION]", valueName: "host:port"))
  var remediation: String?

  @Option(help: ArgumentHelp("CA certificate the services' certificates chain to, PEM. [env: REDRESS_CA]", valueName: "path"))
  var ca: String?

  @Option(help: ArgumentHelp("Client certificate for mutual TLS, PEM. [env: REDRESS_CERT]", valueName: "path"))
  var cert: String?

  @Option(help: ArgumentHelp("Key of the client certificate, PEM. [env: REDRESS_KEY]", valueName: "path"))
  var key: String?

  @Option(help: "Bearer token. Prefer REDRESS_TOKEN: flags show up in process listings. [env: REDRESS_TOKEN]")
  var token: String?

  @Option(name: .customLong("as"), help: ArgumentHelp("Use the profile's token for this identity (e.g. approver).", valueName: "identity"))
  var identity: String?

  @Option(help: ArgumentHelp("Deadline of each call in seconds.", valueName: "seconds"))
  var timeout: Double = 10

  func clientConfiguration() throws -> RedressClient.Configuration {
    let environment = ProcessInfo.processInfo.environment
    let profilePath = self.profile ?? environment["REDRESS_PROFILE"]
    let profile = try Profile.load(explicitPath: profilePath)

    func pick(_ flag: String?, _ variable: String, _ fromProfile: String?) -> String? {
      flag ?? environment[variable] ?? fromProfile
    }
    guard let intakeText = pick(self.intake, "REDRESS_INTAKE", profile?.intake),
      let intake = RedressClient.Configuration.Endpoint(intakeText)
    else {
      throw ValidationError("No intake address: pass --intake host:port, set REDRESS_INTAKE, or run `redress dev` first.")
    }
    guard let remediationText = pick(self.remediation, "REDRESS_REMEDIATION", profile?.remediation),
      let remediation = RedressClient.Configuration.Endpoint(remediationText)
    else {
      throw ValidationError(
        "No remediation address: pass --remediation host:port, set REDRESS_REMEDIATION, or run `redress dev` first."
      )
    }
    var token = pick(self.token, "REDRESS_TOKEN", nil)
    if token == nil, let profile {
      let name = self.identity ?? profile.defaultIdentity
      if let name {
        guard let profileToken = profile.tokens[name] else {
          let known = profile.tokens.keys.sorted().joined(separator: ", ")
          throw ValidationError("The profile has no token for '\(name)'; it has: \(known).")
        }
        token = profileToken
      }
    }
    let caPath = pick(self.ca, "REDRESS_CA", profile?.ca)
    let certPath = pick(self.cert, "REDRESS_CERT", profile?.cert)
    let keyPath = pick(self.key, "REDRESS_KEY", profile?.key)
    guard (certPath == nil) == (keyPath == nil) else {
      throw ValidationError("--cert and --key go together.")
    }
    guard token != nil || certPath != nil else {
      throw ValidationError("No credentials: pass a token (REDRESS_TOKEN) or --cert/--key, or run `redress dev` first.")
    }
    return RedressClient.Configuration(
      intake: intake,
      remediation: remediation,
      credentials: .init(
        certificatePEM: try certPath.map(Self.read),
        privateKeyPEM: try keyPath.map(Self.read),
        token: token
      ),
      trustRootsPEM: try caPath.map(Self.read),
      defaultTimeout: .milliseconds(Int(self.timeout * 1000))
    )
  }

  private static func read(_ path: String) throws -> String {
    do {
      return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw ValidationError("Cannot read \(path): \(error.localizedDescription)")
    }
  }
}

/// The client profile `redress dev` writes: addresses, the dev CA, and a token per dev identity.
struct Profile: Codable {
  var intake: String
  var remediation: String
  /// Standard gRPC over HTTP/2 addresses, when the services serve it (for other languages' clients).
  var intakeGRPC: String?
  var remediationGRPC: String?
  var ca: String?
  var cert: String?
  var key: String?
  var tokens: [String: String]
  var defaultIdentity: String?

  enum CodingKeys: String, CodingKey {
    case intake, remediation, ca, cert, key, tokens
    case intakeGRPC = "intake_grpc"
    case remediationGRPC = "remediation_grpc"
    case defaultIdentity = "default_identity"
  }

  static let defaultPath = "redress-data/client.json"

  /// The profile at `explicitPath`, or at the default path if a file is there, or `nil`.
  static func load(explicitPath: String?) throws -> Profile? {
    let path = explicitPath ?? Self.defaultPath
    guard FileManager.default.fileExists(atPath: path) else {
      if let explicitPath {
        throw ValidationError("The profile \(explicitPath) does not exist.")
      }
      return nil
    }
    do {
      return try JSONDecoder().decode(Profile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      throw ValidationError("The profile \(path) is not valid: \(error)")
    }
  }
}
