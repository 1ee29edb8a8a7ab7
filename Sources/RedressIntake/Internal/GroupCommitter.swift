import RedressService
import Synchronization

/// Group commit: concurrent callers' submissions are written in one transaction.
///
/// Written by hand because no package offers it for GRDB. It is the leader/follower scheme: the first
/// caller to find nobody writing becomes the leader and commits everything queued (up to `maxBatchSize`
/// submissions), answers the followers in that batch, then hands leadership to the first caller still
/// queued. No background task is needed, every write happens inside some caller's task, and each caller
/// gets its answer only after the transaction holding its submissions committed.
final class GroupCommitter: Sendable {
  typealias Commit = @Sendable ([Submission]) async throws(IntakeError) -> [SubmissionOutcome]

  private enum Turn {
    /// Someone else committed (or failed to commit) this caller's submissions.
    case finished(Result<[SubmissionOutcome], IntakeError>)
    /// This caller is now the leader and writes the next batch, its own submissions first.
    case lead
  }

  private struct Waiter {
    var id: UInt64
    var submissions: [Submission]
    var continuation: CheckedContinuation<Turn, Never>
  }

  private struct State {
    var queue: [Waiter] = []
    /// Invariant: when false, `queue` is empty.
    var leading = false
    var nextID: UInt64 = 0
    /// Callers ever queued.
    var enqueued = 0
  }

  private let state = Mutex(State())
  private let maxBatchSize: Int
  /// `redress_intake_commit_batch_size` and `redress_intake_commit_duration_seconds{outcome}`, if set.
  private let metrics: RedressMetrics?
  /// Rung whenever a caller queues; lets tests wait for a queue to fill instead of sleeping.
  let queued = Doorbell()

  /// Callers ever queued (for tests that hold the writer and wait for a queue to fill).
  var enqueuedCallers: Int {
    self.state.withLock { $0.enqueued }
  }

  init(maxBatchSize: Int, metrics: RedressMetrics? = nil) {
    self.maxBatchSize = maxBatchSize
    self.metrics = metrics
  }

  /// Queues `submissions` and returns their outcomes once committed (by this caller or a leader).
  func submit(_ submissions: [Submission], commit: Commit) async throws(IntakeError) -> [SubmissionOutcome] {
    let id = self.state.withLock { state in
      defer { state.nextID += 1 }
      return state.nextID
    }
    // Not cancellable on purpose: once queued, the submissions are written, and the caller learns whether.
    let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
      let leads = self.state.withLock { state in
        state.queue.append(Waiter(id: id, submissions: submissions, continuation: continuation))
        state.enqueued += 1
        if state.leading { return false }
        state.leading = true
        return true
      }
      self.queued.ring()
      if leads {
        continuation.resume(returning: .lead)
      }
    }
    switch turn {
    case .finished(let result):
      return try result.get()
    case .lead:
      return try await self.lead(ownID: id, commit: commit).get()
    }
  }

  private func lead(ownID: UInt64, commit: Commit) async -> Result<[SubmissionOutcome], IntakeError> {
    // The leader is at the head of the queue: it was queued first, or was handed leadership as the head.
    let batch = self.state.withLock { state in
      var taken: [Waiter] = []
      var count = 0
      while let first = state.queue.first, taken.isEmpty || count + first.submissions.count <= self.maxBatchSize {
        taken.append(state.queue.removeFirst())
        count += first.submissions.count
      }
      return taken
    }
    let all = batch.flatMap(\.submissions)
    var result: Result<[SubmissionOutcome], IntakeError>
    let started = ContinuousClock.now
    do {
      result = .success(try await commit(all))
    } catch {
      result = .failure(error)
    }
    if let metrics = self.metrics {
      let outcome = if case .success = result { "committed" } else { "failed" }
      metrics.recordDuration("redress_intake_commit_duration_seconds", [("outcome", outcome)], ContinuousClock.now - started)
      metrics.recordValue("redress_intake_commit_batch_size", [], all.count)
    }
    if case .success(let outcomes) = result, outcomes.count != all.count {
      result = .failure(IntakeError(code: .storage, message: "The store answered \(outcomes.count) outcomes for \(all.count) submissions."))
    }

    var own: Result<[SubmissionOutcome], IntakeError> = .success([])
    var offset = 0
    for waiter in batch {
      let range = offset..<(offset + waiter.submissions.count)
      offset = range.upperBound
      let slice = result.map { Array($0[range]) }
      if waiter.id == ownID {
        own = slice
      } else {
        waiter.continuation.resume(returning: .finished(slice))
      }
    }

    let next = self.state.withLock { state -> CheckedContinuation<Turn, Never>? in
      guard let head = state.queue.first else {
        state.leading = false
        return nil
      }
      return head.continuation
    }
    next?.resume(returning: .lead)
    return own
  }
}
