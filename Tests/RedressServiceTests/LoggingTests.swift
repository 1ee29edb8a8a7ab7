import Foundation
import Logging
import RedressService
import Synchronization
import Testing

@Suite("Logging")
struct LoggingTests {
  final class Lines: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { self.lines.withLock { $0.append(line) } }
    var all: [String] { self.lines.withLock { $0 } }
  }

  func logger(_ lines: Lines) -> Logger {
    var logger = Logger(label: "redress.test") { label in
      JSONLogHandler(label: label, metadataProvider: RequestID.metadataProvider, write: lines.append)
    }
    logger.logLevel = .info
    return logger
  }

  @Test("a JSON line holds time, level, logger, message, source and the metadata at the top level; reserved names move aside")
  func jsonLine() throws {
    let lines = Lines()
    var logger = self.logger(lines)
    logger[metadataKey: "replica"] = "a"
    logger.info("incident accepted", metadata: ["incident": "inc_1", "count": "\(3)", "message": "clash", "tags": ["x", "y"]])
    logger.debug("not written below info")
    #expect(lines.all.count == 1)
    let line = try #require(lines.all.first)
    #expect(line.hasSuffix("\n") && !line.dropLast().contains("\n"))
    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    #expect(object["level"] as? String == "info")
    #expect(object["logger"] as? String == "redress.test")
    #expect(object["message"] as? String == "incident accepted")
    #expect(object["source"] as? String == "RedressServiceTests")
    #expect(object["incident"] as? String == "inc_1")
    #expect(object["replica"] as? String == "a")
    #expect(object["metadata.message"] as? String == "clash")
    #expect(object["tags"] as? [String] == ["x", "y"])
    #expect(object["request_id"] == nil)
    let time = try #require(object["time"] as? String)
    #expect(time.hasSuffix("Z") && time.contains("T"))
  }

  @Test("inside a request every line carries its request id")
  func requestID() throws {
    let lines = Lines()
    let logger = self.logger(lines)
    RequestID.$current.withValue("caller-id-42") { logger.info("inside") }
    logger.info("outside")
    let objects = try lines.all.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    #expect(objects.count == 2)
    #expect(objects[0]["request_id"] as? String == "caller-id-42")
    #expect(objects[1]["request_id"] == nil)
  }

  @Test("a caller's request id is used only when it is 1 to 64 safe characters; made ids are 16 hex digits")
  func acceptableIDs() {
    #expect(RequestID.isAcceptable("caller-id_42.a:b"))
    #expect(!RequestID.isAcceptable(""))
    #expect(!RequestID.isAcceptable(String(repeating: "a", count: 65)))
    #expect(!RequestID.isAcceptable("with space"))
    #expect(!RequestID.isAcceptable("new\nline"))
    let made = RequestID.make()
    #expect(made.count == 16 && made.allSatisfy(\.isHexDigit))
    #expect(RequestID.make() != made)
  }
}
