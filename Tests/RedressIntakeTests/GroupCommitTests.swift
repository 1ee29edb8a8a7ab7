import Foundation
import GRDB
@testable import RedressIntake
import RedressSchemas
import RedressService
import Testing
import RedressTestSupport

@Suite("Group commit")
struct GroupCommitTests {
  let acme = Identity(name: "tool-a", tenant: "acme", roles: [.submit])

  func submission(_ key: String, customer: String = "c1") throws -> Submission {
    let report = validReport(customerID: customer)
    return try Submission(
      identity: self.acme, idempotencyKey: key, report: report, triage: Triager(policy: .defaults).triage(report))
  }

  /// Holds the store's writer until `body` returns, so submissions pile up behind it.
  func holdingWriter(_ store: IntakeStore, _ body: () async throws -> Void) async throws {
    let gate = DispatchSemaphore(value: 0)
    store.writer.asyncWriteWithoutTransaction { _ in gate.wait() }
    defer { gate.signal() }
    try await body()
  }

  func waitForQueue(_ store: IntakeStore, callers: Int) async throws {
    try await withTimeout(30, "\(callers) queued submitters") {
      while store.committer.enqueuedCallers < callers {
        await store.committer.queued.wait(timeout: .seconds(1))
      }
    }
  }

  @Test("concurrent submissions share write transactions, at most max-batch-size each, and each gets its own answer")
  func batches() async throws {
    let directory = try TemporaryDirectory()
    let store = try IntakeStore(
      path: directory.url.appendingPathComponent("db.sqlite").path,
      config: .init(idempotencyRetention: .seconds(7 * 86400), maxBatchSize: 10))
    let count = 40
    try await withThrowingTaskGroup(of: (String, SubmissionOutcome).self) { group in
      try await self.holdingWriter(store) {
        for index in 0..<count {
          let submission = try self.submission("key-\(index)", customer: "c\(index)")
          group.addTask { (submission.idempotencyKey, try await store.submit([submission])[0]) }
        }
        try await self.waitForQueue(store, callers: count)
      }
      var answers: [String: String] = [:]
      for try await (key, outcome) in group {
        guard case .accepted(let incident) = outcome else {
          Issue.record("\(key): \(outcome)")
          continue
        }
        answers[key] = incident.report.customer.id
      }
      #expect(answers.count == count)
      for index in 0..<count {
        #expect(answers["key-\(index)"] == "c\(index)")
      }
    }
    let statistics = store.commitStatistics
    #expect(statistics.submissions == count)
    // The first leader may take only itself; everyone else waited and goes in batches of ten.
    #expect(statistics.transactions >= 4)
    #expect(statistics.transactions <= 6)
    #expect(try await store.incidentCount() == count)
  }

  @Test("concurrent retries of one key in the same batch create one incident and replay it")
  func duplicatesInOneBatch() async throws {
    let directory = try TemporaryDirectory()
    let store = try IntakeStore(path: directory.url.appendingPathComponent("db.sqlite").path)
    let submission = try self.submission("same")
    try await withThrowingTaskGroup(of: SubmissionOutcome.self) { group in
      try await self.holdingWriter(store) {
        for _ in 0..<16 {
          group.addTask { try await store.submit([submission])[0] }
        }
        try await self.waitForQueue(store, callers: 16)
      }
      var accepted: [String] = []
      var replayed: [String] = []
      for try await outcome in group {
        switch outcome {
        case .accepted(let incident): accepted.append(incident.id)
        case .replayed(let incident): replayed.append(incident.id)
        case .conflict: Issue.record("unexpected conflict")
        }
      }
      #expect(accepted.count == 1)
      #expect(replayed.count == 15)
      #expect(Set(replayed) == Set(accepted))
    }
    #expect(try await store.incidentCount() == 1)
  }
}
