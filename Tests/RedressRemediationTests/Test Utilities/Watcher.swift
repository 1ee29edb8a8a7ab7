import Foundation
import GRPCCore
import RedressSchemas
import RedressTestSupport

/// A WatchRemedy call running in the background, its updates readable one at a time with a timeout.
final class Watcher: Sendable {
  let updates: AsyncThrowingStream<Redress_V1_RemedyUpdate, any Error>
  private let continuation: AsyncThrowingStream<Redress_V1_RemedyUpdate, any Error>.Continuation

  init() {
    (self.updates, self.continuation) = AsyncThrowingStream.makeStream()
  }

  /// Runs the watch until it ends or the surrounding task is cancelled; every update goes to ``updates``.
  func run(_ desk: Desk, remedyID: String, afterVersion: Int64 = 0) async {
    do {
      try await desk.client.watchRemedy(
        .with {
          $0.remedyID = remedyID
          $0.afterVersion = afterVersion
        },
        metadata: desk.metadata
      ) { response in
        for try await update in response.messages {
          self.continuation.yield(update)
        }
      }
      self.continuation.finish()
    } catch {
      self.continuation.finish(throwing: error)
    }
  }

  /// The next `count` updates, failing after `seconds`.
  func next(_ count: Int, within seconds: Double = 15) async throws -> [Redress_V1_RemedyUpdate] {
    let updates = self.updates
    return try await withTimeout(seconds, "\(count) watch updates") {
      var collected: [Redress_V1_RemedyUpdate] = []
      var iterator = updates.makeAsyncIterator()
      while collected.count < count, let update = try await iterator.next() {
        collected.append(update)
      }
      return collected
    }
  }
}
