// libFuzzer target: built with `-sanitize=fuzzer -DFUZZING` (tools/fuzz.sh); otherwise it replays saved inputs.
import FuzzSupport
import RedressWire

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  WireFuzzing.metadata(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
#else
@main
enum FuzzMetadata {
  static func main() {
    FuzzReplay.main("fuzz-metadata", WireFuzzing.metadata)
  }
}
#endif
