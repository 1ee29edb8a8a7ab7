import Foundation
import NIOSSL
public import RedressService
import RedressWire

extension IntakeConfig {
  /// The configuration keys intake reads beyond the shared ones (flags > `REDRESS_INTAKE_*` environment >
  /// JSON file); docs/INTAKE.md lists them with their flags.
  public enum Keys {
    /// Flag `--remediation-host`.
    public static let remediationHost = "remediation.host"
    /// Flag `--remediation-port`.
    public static let remediationPort = "remediation.port"
    /// Flag `--remediation-cert`.
    public static let remediationCert = "remediation.cert"
    /// Flag `--remediation-key`.
    public static let remediationKey = "remediation.key"
    /// Flag `--remediation-ca`.
    public static let remediationCA = "remediation.ca"
    /// Flag `--remediation-plaintext-for-testing-only`.
    public static let remediationPlaintext = "remediation.plaintext_for_testing_only"
    /// Flag `--review-above`.
    public static let reviewAbove = "triage.review_above"
    /// Flag `--idempotency-retention-hours`.
    public static let retentionHours = "idempotency.retention_hours"
    /// Flag `--max-batch-size`.
    public static let maxBatchSize = "group_commit.max_batch_size"
    /// Flag `--max-bulk-items`.
    public static let maxBulkItems = "limits.max_bulk_items"
    /// Flag `--outbox-initial-backoff-ms`.
    public static let outboxInitialBackoffMS = "outbox.initial_backoff_ms"
    /// Flag `--outbox-max-backoff-ms`.
    public static let outboxMaxBackoffMS = "outbox.max_backoff_ms"
    /// Flag `--outbox-call-timeout-ms`.
    public static let outboxCallTimeoutMS = "outbox.call_timeout_ms"
    /// Flag `--outbox-outage-probe-ms`.
    public static let outboxOutageProbeMS = "outbox.outage_probe_ms"
    /// Flag `--outbox-claim-lease-ms`.
    public static let outboxClaimLeaseMS = "outbox.claim_lease_ms"
  }

  /// Intake's configuration from resolved service settings: the shared ones (address, TLS, data directory)
  /// and intake's own keys (``Keys``), each checked with an error that names the key.
  public init(settings: ServiceSettings) throws {
    self = .defaults
    let reader = settings.reader
    self.server.host = settings.host
    self.server.port = settings.port
    self.server.security = settings.security
    self.server.grpcHTTP2 = settings.grpcHTTP2
    self.server.metrics = settings.metrics
    self.storage.databasePath = settings.dataDirectory.appendingPathComponent("intake.sqlite").path
    self.storage.postgres = settings.postgres

    if let hours = try reader.int(Keys.retentionHours) {
      guard hours >= 7 * 24 else {
        throw ServiceSettings.SettingsError("\(Keys.retentionHours) must be at least 168 (7 days), not \(hours)")
      }
      self.idempotency.retention = .seconds(hours * 3600)
    }
    if let size = try reader.int(Keys.maxBatchSize) {
      guard size >= 1 else { throw ServiceSettings.SettingsError("\(Keys.maxBatchSize) must be at least 1") }
      self.groupCommit.maxBatchSize = size
    }
    if let items = try reader.int(Keys.maxBulkItems) {
      guard items >= 1 else { throw ServiceSettings.SettingsError("\(Keys.maxBulkItems) must be at least 1") }
      self.limits.maxItemsPerBulkCall = items
    }
    if let amounts = try reader.currencyAmounts(Keys.reviewAbove) {
      self.triage.reviewAboveMinor = amounts
    }
    if let initial = try reader.int(Keys.outboxInitialBackoffMS) {
      guard initial >= 1 else { throw ServiceSettings.SettingsError("\(Keys.outboxInitialBackoffMS) must be at least 1") }
      self.outbox.backoff.initial = .milliseconds(initial)
    }
    if let maximum = try reader.int(Keys.outboxMaxBackoffMS) {
      guard maximum >= 1 else { throw ServiceSettings.SettingsError("\(Keys.outboxMaxBackoffMS) must be at least 1") }
      self.outbox.backoff.maximum = .milliseconds(maximum)
    }
    guard self.outbox.backoff.initial <= self.outbox.backoff.maximum else {
      throw ServiceSettings.SettingsError("\(Keys.outboxInitialBackoffMS) must not exceed \(Keys.outboxMaxBackoffMS)")
    }
    if let timeout = try reader.int(Keys.outboxCallTimeoutMS) {
      guard timeout >= 1 else { throw ServiceSettings.SettingsError("\(Keys.outboxCallTimeoutMS) must be at least 1") }
      self.outbox.callTimeout = .milliseconds(timeout)
    }
    if let probe = try reader.int(Keys.outboxOutageProbeMS) {
      guard probe >= 1 else { throw ServiceSettings.SettingsError("\(Keys.outboxOutageProbeMS) must be at least 1") }
      self.outbox.outageProbeInterval = .milliseconds(probe)
    }
    if let lease = try reader.int(Keys.outboxClaimLeaseMS) {
      guard lease >= 1_000 else { throw ServiceSettings.SettingsError("\(Keys.outboxClaimLeaseMS) must be at least 1000") }
      self.outbox.claimLease = .milliseconds(lease)
    }

    if let host = try reader.string(Keys.remediationHost) {
      guard let port = try reader.int(Keys.remediationPort), (1...65535).contains(port) else {
        throw ServiceSettings.SettingsError("\(Keys.remediationPort) (1-65535) is required with \(Keys.remediationHost)")
      }
      let security: ClientSecurity
      if try reader.bool(Keys.remediationPlaintext) ?? false {
        security = .plaintextForTestingOnly
      } else {
        guard let cert = try reader.string(Keys.remediationCert), let key = try reader.string(Keys.remediationKey),
          let ca = try reader.string(Keys.remediationCA)
        else {
          throw ServiceSettings.SettingsError(
            "mutual TLS to remediation needs \(Keys.remediationCert), \(Keys.remediationKey) and \(Keys.remediationCA) "
              + "(intake's client certificate, its key, and the CA remediation's certificate chains to)"
          )
        }
        do {
          security = .tls(
            ClientTLS(
              trustRoots: try NIOSSLCertificate.fromPEMFile(ca),
              certificateChain: try NIOSSLCertificate.fromPEMFile(cert),
              privateKey: try NIOSSLPrivateKey(file: key, format: .pem)
            )
          )
        } catch {
          throw ServiceSettings.SettingsError("cannot load remediation TLS files (cert \(cert), key \(key), ca \(ca)): \(error)")
        }
      }
      self.outbox.remediation = Outbox.Remediation(host: host, port: port, security: security)
    }
  }
}
