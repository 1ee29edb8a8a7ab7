#!/usr/bin/env bash
# redress-c end to end against the real services (issue 12): `redress dev` on free ports, then submit, replay, read,
# find the remedy, and watch it through two changes made by the Swift CLI; bad input, unknown ids and bad tokens get
# the documented exit codes. Usage: tests/e2e.sh [path/to/redress] (default ../../.build/debug/redress).
set -euo pipefail
redress="${1:-$(dirname "${BASH_SOURCE[0]}")/../../../.build/debug/redress}"
redress="$(realpath "$redress")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
c=build/redress-c
[[ -x "$redress" && -x "$c" ]] || { echo "** build redress (swift build) and redress-c (make) first" >&2; exit 1; }

work="$(mktemp -d)"
dev_pid=""
cleanup() {
  if [[ -n "$dev_pid" ]]; then kill -INT "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$redress" dev --data-dir "$work/data" --intake-port 0 --remediation-port 0 --no-grpc --log-level error > "$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 600); do
  grep -qx ready "$work/dev.log" 2>/dev/null && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log" >&2; fail "redress dev exited"; }
  sleep 0.1
done
grep -qx ready "$work/dev.log" || fail "redress dev not ready in 60 s"
P="$work/data/client.json"

submit=(--profile "$P" submit --customer-id c-c-1 --customer-name "Harbor Bikes" --tier premium
  --title "Shipped blue helmets instead of red" --category wrong-item --channel email --demand "Swap them"
  --demand-amount "120.00 USD" --idempotency-key c-e2e-1 --occurred-at 2026-11-30T09:00:00Z)
first="$("$c" "${submit[@]}")"
incident="$(sed -n 's/.*"incident":{"id":"\([^"]*\)".*/\1/p' <<<"$first")"
[[ -n "$incident" ]] || fail "no incident id in: $first"
grep -q '"replayed":true' <<<"$first" && fail "a first submit says replayed"
again="$("$c" "${submit[@]}")"
grep -q "\"id\":\"$incident\"" <<<"$again" && grep -q '"replayed":true' <<<"$again" || fail "a retry did not replay: $again"
"$c" --profile "$P" incident "$incident" | grep -q '"title":"Shipped blue helmets instead of red"' || fail "incident read"

# Remediation opens the remedy once intake hands the incident over (in the background): wait, bounded.
remedy=""
for _ in $(seq 1 150); do
  if out="$("$c" --profile "$P" remedy --incident "$incident" 2>/dev/null)"; then
    remedy="$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"$out")"
    break
  fi
  sleep 0.2
done
[[ -n "$remedy" ]] || fail "no remedy for $incident"

# Watch it: the snapshot, then the two changes the Swift CLI makes.
"$c" --profile "$P" watch "$remedy" --count 3 > "$work/watch.out" 2> "$work/watch.err" &
watch_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/watch.out" ]] && break; sleep 0.1; done
grep -q '"snapshot"' "$work/watch.out" || fail "no snapshot: $(cat "$work/watch.out" "$work/watch.err")"
"$redress" note "$remedy" --text "Called the client back" --profile "$P" > /dev/null
"$redress" note "$remedy" --text "Replacement picked" --profile "$P" > /dev/null
for _ in $(seq 1 300); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$watch_pid" 2>/dev/null && { kill "$watch_pid"; fail "the watch did not see two changes: $(cat "$work/watch.out")"; }
wait "$watch_pid" || fail "watch exited $?: $(cat "$work/watch.err")"
[[ "$(wc -l < "$work/watch.out")" -eq 3 ]] || fail "expected 3 watch lines: $(cat "$work/watch.out")"
sed -n 2p "$work/watch.out" | grep -q '"change".*Called the client back' || fail "first change: $(sed -n 2p "$work/watch.out")"
sed -n 3p "$work/watch.out" | grep -q '"change".*Replacement picked' || fail "second change: $(sed -n 3p "$work/watch.out")"

# Errors: exit codes and field violations as the Swift CLI gives them.
set +e
"$c" --profile "$P" submit --customer-id c-c-2 --customer-name "" --title "" --category wrong-item --channel email 2> "$work/err"
code=$?
set -e
[[ $code -eq 2 ]] || fail "invalid input exited $code"
grep -q -- "- report.title: is required" "$work/err" || fail "no field violation: $(cat "$work/err")"
set +e
"$c" --profile "$P" incident inc_01M8RT171H3Y1NY7RQXR23MBZZ 2> /dev/null; code=$?
set -e
[[ $code -eq 3 ]] || fail "unknown incident exited $code"
sed 's/"operator" *: *"[^"]*"/"operator": "not-the-token"/' "$P" > "$work/bad.json"
set +e
"$c" --profile "$work/bad.json" incident "$incident" 2> /dev/null; code=$?
set -e
[[ $code -eq 5 ]] || fail "a wrong token exited $code"
# Mutual TLS: the dev operator's client certificate, and no token, authenticates too.
python3 - "$P" "$work/mtls.json" "$work/data/pki" <<'PY'
import json, sys
profile = json.load(open(sys.argv[1]))
profile.update(cert=sys.argv[3] + "/client.pem", key=sys.argv[3] + "/client-key.pem", tokens={})
profile.pop("default_identity", None)
json.dump(profile, open(sys.argv[2], "w"))
PY
"$c" --profile "$work/mtls.json" incident "$incident" | grep -q "\"id\":\"$incident\"" || fail "a client certificate did not authenticate"

# The C example in docs/CLIENTS.md, as written: accepted, then replayed.
address="$(sed -n 's/.*"intake" *: *"\([^"]*\)".*/\1/p' "$P")"
ca="$(sed -n 's/.*"ca" *: *"\([^"]*\)".*/\1/p' "$P")"
token="$(sed -n 's/.*"operator" *: *"\([^"]*\)".*/\1/p' "$P")"
build/submit-example "${address%:*}" "${address##*:}" "$ca" "$token" | grep -q ' accepted$' || fail "example: first submit"
build/submit-example "${address%:*}" "${address##*:}" "$ca" "$token" | grep -q ' replayed$' || fail "example: retry"
echo "redress-c end to end: ok"
