#!/usr/bin/env bash
# Runs every Swift test in three passes: the wire's tests, then everything else but the heavy multi-process and
# multi-replica suites, then those. On a 2-core machine the service suites on PostgreSQL (four service processes,
# store replicas and the database under load) starve the wire tests' few-second bounds when they run at once;
# apart, each pass is reliable. Extra arguments go to every `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
heavy='ReplicaCrashTests|IntakeReplicaTests|IntakeDatabaseDownTests|DatabaseDownTests|ReplicaTests|CrashSafetyTests'
swift test --filter RedressWireTests "$@"
swift test --skip "RedressWireTests|$heavy" "$@"
swift test --filter "$heavy" "$@"
