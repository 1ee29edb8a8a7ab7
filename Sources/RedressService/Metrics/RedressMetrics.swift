public import CoreMetrics
import Metrics
public import Prometheus
import Synchronization

/// One service's metrics: a Prometheus registry of its own, fed through swift-metrics.
///
/// Each service instance has its own registry rather than the process-wide `MetricsSystem`, so two services in one
/// process (`redress dev`, the tests) each export only their own figures. Code records through swift-metrics'
/// types made with ``factory`` (`Counter(label:dimensions:factory:)`); the endpoint (``MetricsEndpoint``) exports
/// ``exposition()``. Labels are bounded by construction: method names, status codes, enum cases — never ids,
/// tenants or free text.
public final class RedressMetrics: Sendable {
  /// What runs before each scrape (gauges read from a store).
  private let refreshers = Mutex<[@Sendable () async -> Void]>([])

  /// Where the series live.
  public let registry: PrometheusCollectorRegistry
  /// The swift-metrics factory writing into ``registry``.
  public let factory: PrometheusMetricsFactory

  /// Latency buckets for RPCs and commits: 0.5 ms to 10 s.
  public static let latencyBuckets: [Duration] = [
    .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
    .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    .seconds(5), .seconds(10),
  ]

  /// Buckets for counts per batch (group commit): 1 to 1,024.
  public static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

  /// Buckets for durations of the playbook (time to acknowledge, to resolve): a minute to 30 days.
  public static let playbookBuckets: [Duration] = [
    .seconds(60), .seconds(300), .seconds(900), .seconds(1_800), .seconds(3_600), .seconds(7_200), .seconds(14_400),
    .seconds(28_800), .seconds(86_400), .seconds(172_800), .seconds(259_200), .seconds(604_800), .seconds(1_209_600),
    .seconds(2_592_000),
  ]

  /// - Parameter durationBuckets: Buckets for the duration histograms named here; every other one gets
  ///   ``latencyBuckets``.
  public init(durationBuckets: [String: [Duration]]) {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = Self.latencyBuckets
    factory.durationHistogramBuckets = durationBuckets
    factory.defaultValueHistogramBuckets = Self.batchBuckets
    self.registry = registry
    self.factory = factory
  }

  /// Metrics whose duration histograms all get ``latencyBuckets``.
  public convenience init() {
    self.init(durationBuckets: [:])
  }

  /// Adds `amount` to the counter `label` with `dimensions`.
  public func increment(_ label: String, _ dimensions: [(String, String)] = [], by amount: Int = 1) {
    Counter(label: label, dimensions: dimensions, factory: self.factory).increment(by: amount)
  }

  /// Records `duration` in the latency histogram `label`.
  public func recordDuration(_ label: String, _ dimensions: [(String, String)] = [], _ duration: Duration) {
    CoreMetrics.Timer(label: label, dimensions: dimensions, factory: self.factory).record(duration: duration)
  }

  /// Records `value` in the histogram `label` (counts per batch and the like).
  public func recordValue(_ label: String, _ dimensions: [(String, String)] = [], _ value: Int) {
    Recorder(label: label, dimensions: dimensions, aggregate: true, factory: self.factory).record(value)
  }

  /// Sets the gauge `label` to `value`.
  public func setGauge(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
    Gauge(label: label, dimensions: dimensions, factory: self.factory).record(value)
  }

  /// Runs `refresh` before every scrape, to set gauges that are read rather than counted (a backlog in a store).
  /// It should answer within a second or two and leave the gauges as they were when it cannot read them.
  public func onScrape(_ refresh: @escaping @Sendable () async -> Void) {
    self.refreshers.withLock { $0.append(refresh) }
  }

  /// Runs every ``onScrape(_:)`` closure, in the order they were added.
  public func refresh() async {
    for refresh in self.refreshers.withLock({ $0 }) { await refresh() }
  }

  /// Every series in Prometheus' text exposition format (version 0.0.4).
  public func exposition() -> [UInt8] {
    self.registry.emitToBuffer()
  }
}
