import Histogram

/// What one closed-loop run measured.
struct LoadResult: Sendable {
  /// Operations completed inside the measurement window.
  var operations: Int
  /// The measurement window.
  var duration: Duration
  /// Latency of each measured operation, in microseconds.
  var latencyMicros: Histogram<UInt64>

  var perSecond: Double {
    Double(self.operations) / self.duration.seconds
  }

  func percentileMillis(_ p: Double) -> Double {
    Double(self.latencyMicros.valueAtPercentile(p)) / 1000
  }
}

extension Duration {
  var seconds: Double {
    let (s, attos) = self.components
    return Double(s) + Double(attos) / 1e18
  }
}

/// A closed-loop load generator: `concurrency` workers each run `operation` back to back, so exactly
/// `concurrency` operations are in flight at any time. Operations finishing during `warmup` are not
/// counted; those started and finished in the `duration` that follows are.
///
/// - Parameter operation: Called with the worker's index (0..<concurrency).
func runClosedLoop(
  concurrency: Int,
  warmup: Duration,
  duration: Duration,
  operation: @escaping @Sendable (Int) async throws -> Void
) async throws -> LoadResult {
  let clock = ContinuousClock()
  let start = clock.now
  let measureFrom = start + warmup
  let measureUntil = measureFrom + duration

  return try await withThrowingTaskGroup(of: (Int, Histogram<UInt64>).self) { group in
    for worker in 0..<concurrency {
      group.addTask {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var count = 0
        while true {
          let began = clock.now
          if began >= measureUntil { break }
          try await operation(worker)
          let ended = clock.now
          if began >= measureFrom && ended <= measureUntil {
            let micros = (ended - began).seconds * 1e6
            _ = histogram.record(UInt64(max(1, micros.rounded())))
            count += 1
          }
        }
        return (count, histogram)
      }
    }
    var total = 0
    var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    for try await (count, histogram) in group {
      total += count
      merged.add(histogram)
    }
    return LoadResult(operations: total, duration: duration, latencyMicros: merged)
  }
}
