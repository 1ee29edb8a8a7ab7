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
source ../dev-for-tests.sh
trap 'stop_dev; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start_dev "$redress" "$work/data" --no-grpc
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
# Without --occurred-at a retry sends the same bytes (intake dates the report) and replays too.
undated=(--profile "$P" submit --customer-id c-c-2 --customer-name "Harbor Bikes" --tier standard --title "Late delivery" --category late-delivery
  --channel email --idempotency-key c-e2e-undated)
undated_first="$("$c" "${undated[@]}")"
undated_id="$(sed -n 's/.*"incident":{"id":"\([^"]*\)".*/\1/p' <<<"$undated_first")"
undated_again="$("$c" "${undated[@]}")"
grep -q "\"id\":\"$undated_id\"" <<<"$undated_again" && grep -q '"replayed":true' <<<"$undated_again" \
  || fail "a retry without --occurred-at did not replay: $undated_again"
"$c" --profile "$P" incident "$incident" | grep -q '"title":"Shipped blue helmets instead of red"' || fail "incident read"

# Remediation opens the remedy once intake hands the incident over, in the background, and nothing announces it to a
# client: ask again, a bounded number of times (the only wait on time here).
remedy=""
for _ in $(seq 1 150); do
  if out="$("$c" --profile "$P" remedy --incident "$incident" 2>/dev/null)"; then
    remedy="$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"$out")"
    break
  fi
  sleep 0.2
done
[[ -n "$remedy" ]] || fail "no remedy for $incident"

# Watch it through two changes the Swift CLI makes: a watch from the version read gets every change after it, in
# order, whenever it starts (WatchRemedyRequest.after_version), so nothing here waits on time.
version="$(sed -n 's/.*"version":"\([0-9]*\)".*/\1/p' <<<"$out" | head -1)"
[[ -n "$version" ]] || fail "no version in: $out"
"$redress" note "$remedy" --text "Called the client back" --profile "$P" > /dev/null
"$redress" note "$remedy" --text "Replacement picked" --profile "$P" > /dev/null
timeout 30 "$c" --profile "$P" watch "$remedy" --after-version "$version" --count 2 > "$work/watch.out" 2> "$work/watch.err" \
  || fail "watch exited $?: $(cat "$work/watch.out" "$work/watch.err")"
[[ "$(wc -l < "$work/watch.out")" -eq 2 ]] || fail "expected 2 watch lines: $(cat "$work/watch.out")"
sed -n 1p "$work/watch.out" | grep -q '"change".*Called the client back' || fail "first change: $(sed -n 1p "$work/watch.out")"
sed -n 2p "$work/watch.out" | grep -q '"change".*Replacement picked' || fail "second change: $(sed -n 2p "$work/watch.out")"
# A watch from now starts with the snapshot.
timeout 30 "$c" --profile "$P" watch "$remedy" --count 1 | grep -q '"snapshot"' || fail "no snapshot"

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
