#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ and runs each for a while (Fuzz/README.md).
#
#   tools/fuzz.sh                 every target for 60 s each (what .ci/run does)
#   tools/fuzz.sh 600 connection  one target for 10 minutes
#   FUZZ_CONFIG=release tools/fuzz.sh 1800 connection   optimized (about 4x the executions per second;
#                                 a longer cold build)
#
# Corpora grow in .fuzz/corpus/<target> (not in git; seeded from Fuzz/seeds/<target>). A crash leaves
# .fuzz/crash-* and fails the script; replay it with `.build/debug/fuzz-<target> .fuzz/crash-...` after a
# normal `swift build`, or `.build-fuzz/debug/fuzz-<target> .fuzz/crash-...` here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(frames metadata decompress connection playbook)
fi

if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

# A scratch directory of its own: the sanitizer changes every module's flags, and sharing .build would
# rebuild the normal build from scratch each time.
config="${FUZZ_CONFIG:-debug}"
for target in "${targets[@]}"; do
  swift build -c "$config" --scratch-path .build-fuzz --sanitize=fuzzer -Xswiftc -DFUZZING --product "fuzz-$target"
done

# Without this, a crash waits in Swift's backtracer and libFuzzer writes no crash file.
export SWIFT_BACKTRACE=enable=no
mkdir -p .fuzz
for target in "${targets[@]}"; do
  corpus=".fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  [[ -d "Fuzz/seeds/$target" ]] && seeds=("Fuzz/seeds/$target")
  echo "== fuzz-$target for ${seconds}s"
  log=".fuzz/$target.log"
  if ! ".build-fuzz/$config/fuzz-$target" "$corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=".fuzz/" -print_final_stats=1 >"$log" 2>&1; then
    echo "** fuzz-$target failed (crash, timeout or out of memory); the end of $log:" >&2
    tail -40 "$log" >&2
    ls -l .fuzz/crash-* .fuzz/timeout-* .fuzz/oom-* 2>/dev/null >&2 || true
    exit 1
  fi
  grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
done
