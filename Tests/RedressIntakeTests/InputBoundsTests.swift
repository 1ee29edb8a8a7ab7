import Foundation
import GRPCCore
import GRPCProtobuf
import RedressSchemas
import Testing

/// Every field an RPC takes is bounded and malformed bytes are named (issue 11, finding 8).
@Suite("Input bounds")
struct InputBoundsTests {
  @Test("a 1 MiB incident id, 10,000 status filters and a 1 MiB customer filter are refused without echoing them")
  func oversizedInputs() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withClient { intake in
        let metadata = bearer(TestIdentities.toolA.token)
        let hugeID = String(repeating: "i", count: 1024 * 1024)
        let get = try await #require(throws: RPCError.self) {
          _ = try await intake.getIncident(.with { $0.incidentID = hugeID }, metadata: metadata)
        }
        #expect(get.code == .invalidArgument)
        #expect(get.message.contains("incident_id"))
        #expect(get.message.utf8.count < 1024, "the answer echoed the id")

        let list = try await #require(throws: RPCError.self) {
          _ = try await intake.listIncidents(
            .with {
              $0.statuses = Array(repeating: .awaitingRemediation, count: 10_000)
              $0.customerID = hugeID
            },
            metadata: metadata
          )
        }
        #expect(list.code == .invalidArgument)
        let fields = (try list.unpackGoogleRPCStatus())?.details.compactMap(\.badRequest).flatMap(\.violations).map(\.field)
        #expect(fields == ["statuses", "customer_id"])
        #expect(list.message.utf8.count < 1024)
      }
    }
  }

  @Test("a string field holding invalid UTF-8 is answered invalidArgument naming the message and the rule")
  func invalidUTF8() async throws {
    try await IntakeHarness.run { harness in
      try await harness.withGRPCClient { client in
        // GetIncidentRequest.incident_id (field 1, length-delimited) = 0xC3 0x28: not UTF-8.
        let bytes: [UInt8] = [0x0A, 0x02, 0xC3, 0x28]
        let error = try await #require(throws: RPCError.self) {
          try await client.unary(
            request: ClientRequest(message: bytes, metadata: bearer(TestIdentities.toolA.token)),
            descriptor: MethodDescriptor(fullyQualifiedService: "redress.v1.Intake", method: "GetIncident"),
            serializer: RawBytes(),
            deserializer: RawBytes(),
            options: .defaults
          ) { try $0.message }
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("redress.v1.GetIncidentRequest"), "\(error.message)")
        #expect(error.message.contains("not UTF-8"), "\(error.message)")
      }
    }
  }
}

/// Sends and receives bytes as they are.
struct RawBytes: MessageSerializer, MessageDeserializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
