import Foundation
import GRDB
@testable import RedressRemediation
import RedressSchemas
import RedressService
import RedressTestSupport
import Testing

/// A database written before groups (migration v1 only) opens under the current store unchanged in meaning.
@Suite("Remediation store migrations")
struct StoreMigrationTests {
  @Test("v2 fills group and customer from stored remedies and keeps a fired fix deadline from firing again")
  func groupsAndCustomers() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.url.appendingPathComponent("remediation.sqlite").path
    let playbook = Playbook(policy: .defaults)
    let opened = Date(timeIntervalSince1970: 1_800_000_000)
    // A remedy as v1 stored it: no group, its fix deadline fired (stage overdue + escalation), no fired field.
    var remedy = playbook.open(incident: Incidents.make(id: "inc_old", customer: "cust-old"), id: "rem_old", by: "intake", at: opened)
    remedy.groupID = ""
    let fix = Playbook.index(.fix)
    remedy.stages[fix].state = .active
    remedy.stages[fix].overdue = true
    remedy.currentStage = .fix
    remedy.fix.owner = "Sam Rivera"
    remedy.fix.dueAt = .init(date: opened + 3_600)
    remedy.escalations.append(.with { $0.kind = "overdue:fix"; $0.at = .init(date: opened + 3_600) })
    do {
      let queue = try DatabaseQueue(path: path)
      try RemediationStore.migrator.migrate(queue, upTo: "v1: remedies and their change log")
      let body: Data = try remedy.serializedBytes()
      try await queue.write { db in
        try db.execute(
          sql: """
            INSERT INTO remedy (id, tenant, incident_id, version, status, stage, owner, overdue, recurrence,
                                lesson_fingerprint, next_deadline, opened_at, body)
            VALUES ('rem_old', 'acme', 'inc_old', 1, 1, 5, 'Sam Rivera', 1, 0, NULL, ?, ?, ?)
            """,
          arguments: [(opened + 3_600).timeIntervalSince1970, opened.timeIntervalSince1970, body]
        )
      }
    }
    let store = try RemediationStore(path: path)
    let migrated = try #require(try await store.remedy(id: "rem_old", tenant: "acme"))
    #expect(migrated.groupID == "inc_old")
    #expect(migrated.fix.deadlineFired)
    var filter = RemediationStore.Filter()
    filter.customerID = "cust-old"
    #expect(try await store.list(tenant: "acme", filter: filter, afterID: nil, limit: 10).map(\.id) == ["rem_old"])
    filter = RemediationStore.Filter()
    filter.groupID = "inc_old"
    #expect(try await store.list(tenant: "acme", filter: filter, afterID: nil, limit: 10).map(\.id) == ["rem_old"])
    // The fired fix deadline does not fire again; the resolve deadline (3 days) is still ahead of it.
    #expect(try await store.checkDeadlines(remedyID: "rem_old", at: opened + 7_200, playbook: playbook) == nil)
    #expect(try await store.remediesWithDeadline(atOrBefore: opened + 7_200).isEmpty)
  }
}
