import Foundation
import GRPCCore
import RedressClient
import RedressSchemas
import Testing

@Suite("Client library")
struct RedressClientTests {
  static let report = Redress_V1_IncidentReport.with {
    $0.title = "Wrong item shipped"
    $0.customer.id = "c-1"
  }

  @Test("a submit retried after unavailable reuses one idempotency key and gets the first incident")
  func submitRetriesWithOneKey() async throws {
    let intake = ScriptedIntake(failures: [
      RPCError(code: .unavailable, message: "down"),
      RPCError(code: .unavailable, message: "still down"),
    ])
    let submission = try await ClientTestHarness.withServices(intake: intake, remediation: ScriptedRemediation()) {
      try await $0.submit(Self.report)
    }
    let attempts = intake.attempts
    #expect(attempts.count == 3)
    #expect(Set(attempts.map(\.idempotencyKey)).count == 1, "every retry carries the same key")
    #expect(submission.incident.id == "inc_for_" + submission.idempotencyKey)
    #expect(submission.replayed, "the server saw the key before, so it answered a replay")
  }

  @Test("two logical submits use two different idempotency keys")
  func distinctKeys() async throws {
    let intake = ScriptedIntake(failures: [])
    let (first, second) = try await ClientTestHarness.withServices(intake: intake, remediation: ScriptedRemediation()) {
      (try await $0.submit(Self.report), try await $0.submit(Self.report))
    }
    #expect(first.idempotencyKey != second.idempotencyKey)
  }

  @Test("rate limiting with a retry-after is retried no sooner than the server asked")
  func honoursRetryAfter() async throws {
    let intake = ScriptedIntake(failures: [
      RPCError(code: .resourceExhausted, message: "slow down", metadata: ["retry-after-ms": "300"])
    ])
    let start = ContinuousClock.now
    _ = try await ClientTestHarness.withServices(intake: intake, remediation: ScriptedRemediation()) { client in
      let started = ContinuousClock.now
      _ = try await client.submit(Self.report)
      return started
    }
    #expect(intake.attempts.count == 2)
    #expect(ContinuousClock.now - start >= .milliseconds(300))
  }

  @Test("resourceExhausted without a retry-after (e.g. too large) is not retried")
  func noRetryWithoutRetryAfter() async throws {
    let intake = ScriptedIntake(failures: [RPCError(code: .resourceExhausted, message: "message too large")])
    await #expect(throws: RPCError.self) {
      try await ClientTestHarness.withServices(intake: intake, remediation: ScriptedRemediation()) {
        try await $0.submit(Self.report)
      }
    }
    #expect(intake.attempts.count == 1)
  }

  @Test("invalid input is not retried and keeps its code")
  func invalidNotRetried() async throws {
    let intake = ScriptedIntake(failures: [RPCError(code: .invalidArgument, message: "title is required")])
    let error = await #expect(throws: RPCError.self) {
      try await ClientTestHarness.withServices(intake: intake, remediation: ScriptedRemediation()) {
        try await $0.submit(Self.report)
      }
    }
    #expect(error?.code == .invalidArgument)
    #expect(intake.attempts.count == 1)
  }

  @Test("calls carry the bearer token and a deadline")
  func tokenAndDeadline() async throws {
    let intake = ScriptedIntake(failures: [])
    let deadlines = DeadlineRecorder()
    _ = try await ClientTestHarness.withServices(
      intake: intake,
      remediation: ScriptedRemediation(),
      deadlines: deadlines
    ) {
      try await $0.submit(Self.report)
    }
    #expect(intake.attempts.first?.caller == "tool")
    #expect(deadlines.recorded.count == 1)
    #expect(deadlines.recorded.first??.isEmpty == false, "grpc-timeout is set from the default deadline")
  }

  @Test("an action is not repeated after unavailable, but is after a rate-limit refusal")
  func actRetries() async throws {
    let flaky = ScriptedRemediation(actFailures: [RPCError(code: .unavailable, message: "connection lost")])
    await #expect(throws: RPCError.self) {
      try await ClientTestHarness.withServices(intake: ScriptedIntake(failures: []), remediation: flaky) {
        try await $0.act(on: "rem_1", expectedVersion: 3, .note(.with { $0.text = "hi" }))
      }
    }
    #expect(flaky.actAttempts == 1)

    let limited = ScriptedRemediation(actFailures: [
      RPCError(code: .resourceExhausted, message: "slow down", metadata: ["retry-after-ms": "20"])
    ])
    let remedy = try await ClientTestHarness.withServices(intake: ScriptedIntake(failures: []), remediation: limited) {
      try await $0.act(on: "rem_1", expectedVersion: 3, .note(.with { $0.text = "hi" }))
    }
    #expect(limited.actAttempts == 2)
    #expect(remedy.version == 4)
  }

  @Test("a watch resumes after a dropped stream from the last version it delivered")
  func watchResumes() async throws {
    let remediation = ScriptedRemediation(watchScripts: [
      .init(versions: [1, 2], endWith: RPCError(code: .unavailable, message: "server went away")),
      .init(versions: [2, 3, 4], endWith: nil),
    ])
    let versions = try await ClientTestHarness.withServices(intake: ScriptedIntake(failures: []), remediation: remediation) {
      client in
      try await client.watch(remedyID: "rem_1") { updates in
        var seen: [Int64] = []
        for try await update in updates {
          seen.append(update.version)
          if seen.count == 4 { break }
        }
        return seen
      }
    }
    #expect(versions == [1, 2, 3, 4], "version 2 is not delivered twice")
    #expect(remediation.watchAfterVersions == [0, 2])
  }

  @Test("money parses exactly in minor units and formats back")
  func money() {
    #expect(Redress_V1_Money(parsing: "120.50 USD")?.amountMinor == 12050)
    #expect(Redress_V1_Money(parsing: "EUR 7")?.amountMinor == 700)
    #expect(Redress_V1_Money(parsing: "500 JPY")?.amountMinor == 500)
    #expect(Redress_V1_Money(parsing: "1.5 JPY") == nil)
    #expect(Redress_V1_Money(parsing: "1.234 USD") == nil)
    #expect(Redress_V1_Money(parsing: "-3 USD") == nil)
    #expect(Redress_V1_Money(parsing: "12 dollars") == nil)
    #expect(Redress_V1_Money(parsing: "0.05 usd")?.formatted == "0.05 USD")
    #expect(Redress_V1_Money(parsing: "1.250 KWD")?.formatted == "1.250 KWD")
  }
}
