import RedressSchemas
import Testing

@testable import RedressRemediation

/// The in-process fan-out of committed changes to watchers.
@Suite("Remedy broadcaster")
struct RemedyBroadcasterTests {
  func change(_ remedyID: String, _ version: Int64) -> Redress_V1_RemedyChange {
    .with {
      $0.remedy.id = remedyID
      $0.remedy.version = version
      $0.entry.version = version
    }
  }

  @Test("a watcher gets only its remedy's changes, in the order they were published")
  func fanOut() async {
    let broadcaster = RemedyBroadcaster(bufferLimit: 16)
    let (id, stream) = broadcaster.subscribe(remedyID: "a")
    broadcaster.publish(self.change("a", 2))
    broadcaster.publish(self.change("b", 2))
    broadcaster.publish(self.change("a", 3))
    broadcaster.unsubscribe(id)
    var versions: [Int64] = []
    for await change in stream { versions.append(change.remedy.version) }
    #expect(versions == [2, 3])
  }

  @Test("a watcher that falls more than its buffer behind is ended, not silently skipped")
  func overflowEndsTheStream() async {
    let broadcaster = RemedyBroadcaster(bufferLimit: 2)
    let (_, stream) = broadcaster.subscribe(remedyID: "a")
    for version in 2...5 { broadcaster.publish(self.change("a", Int64(version))) }
    var versions: [Int64] = []
    for await change in stream { versions.append(change.remedy.version) }
    // The stream ended after what fit; the watch then answers UNAVAILABLE and the client resumes from 3.
    #expect(versions == [2, 3])
  }

  @Test("after close every stream ends and new subscriptions end at once")
  func closeEndsEverything() async {
    let broadcaster = RemedyBroadcaster(bufferLimit: 4)
    let (_, before) = broadcaster.subscribe(remedyID: "a")
    broadcaster.close()
    let (_, after) = broadcaster.subscribe(remedyID: "a")
    broadcaster.publish(self.change("a", 2))
    var received = 0
    for await _ in before { received += 1 }
    for await _ in after { received += 1 }
    #expect(received == 0)
  }
}
