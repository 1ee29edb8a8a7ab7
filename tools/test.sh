#!/usr/bin/env bash
# Runs every Swift test in three passes: the wire's tests, then everything else but the heavy multi-process and
# multi-replica suites, then those. On a 2-core machine the service suites on PostgreSQL (four service processes,
# store replicas and the database under load) starve the wire tests' few-second bounds when they run at once;
# apart, each pass is reliable. Extra arguments go to every `swift test`.
#
# Each pass has a time limit (REDRESS_TEST_PASS_MINUTES, 20 by default; a pass takes 1-5 minutes after the build):
# a hung test fails the run then, and the names of the tests that started but never finished are printed last,
# where a CI log's tail shows them.
set -euo pipefail
cd "$(dirname "$0")/.."
heavy='WebhookCrashTests|ReplicaCrashTests|IntakeReplicaTests|IntakeDatabaseDownTests|DatabaseDownTests|ReplicaTests|CrashSafetyTests'
minutes="${REDRESS_TEST_PASS_MINUTES:-20}"

# The build is not timed: a cold one takes ~8 minutes on 2 cores.
swift build --build-tests

pass() {
  local name="$1"; shift
  local log; log="$(mktemp "/tmp/redress-test-$name.XXXXXX")"
  local status=0
  timeout --kill-after=30 "$((minutes * 60))" swift test --skip-build "$@" 2>&1 | tee "$log" || status=$?
  if [[ $status -ne 0 ]]; then
    [[ $status -eq 124 || $status -eq 137 ]] && echo "** test pass '$name' did not finish within $minutes minutes" >&2
    # Swift Testing prints `◇ Test "…" started.` and later `✔`/`✘ Test "…" passed|failed …` for each test.
    python3 - "$log" <<'PY' >&2
import re, sys
started, ended = [], set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r'^◇ Test (".*") started\.', line)
    if m: started.append(m.group(1))
    m = re.match(r'^[✔✘] Test (".*") (passed|failed|skipped)', line)
    if m: ended.add(m.group(1))
unfinished = [t for t in started if t not in ended]
failed = sorted({m.group(1) for m in (re.match(r'^✘ Test (".*") failed', l) for l in open(sys.argv[1], encoding="utf-8", errors="replace")) if m})
for t in unfinished: print(f"** never finished: {t}")
for t in failed: print(f"** failed: {t}")
PY
    rm -f "$log"
    exit "$status"
  fi
  rm -f "$log"
}

pass wire --filter RedressWireTests "$@"
pass rest --skip "RedressWireTests|$heavy" "$@"
pass heavy --filter "$heavy" "$@"
