// libFuzzer target: built with `-sanitize=fuzzer -DFUZZING` (tools/fuzz.sh); otherwise it replays saved inputs.
import FuzzSupport
import RedressRemediation

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  PlaybookFuzzing.run(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
#else
@main
enum FuzzPlaybook {
  static func main() {
    FuzzReplay.main("fuzz-playbook", PlaybookFuzzing.run)
  }
}
#endif
