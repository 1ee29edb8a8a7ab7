import SwiftProtobuf

extension Google_Protobuf_Timestamp {
  /// Whether the timestamp is in the range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31, with
  /// nanoseconds 0-999,999,999. SwiftProtobuf does not check this when decoding.
  var isWellFormed: Bool {
    (-62_135_596_800...253_402_300_799).contains(self.seconds) && (0...999_999_999).contains(self.nanos)
  }
}
