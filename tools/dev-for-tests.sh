# Sourced by the client tests (tools/python-client/run.sh, tools/libredress/tests/e2e.sh): `start_dev REDRESS DIR
# [ARGS...]` starts `redress dev` on free ports under DIR and returns once it prints "ready" (read from its output,
# no polling), or fails after 60 s. Sets dev_pid; `stop_dev` ends it with SIGINT, as Ctrl-C would.
dev_pid=""

start_dev() {
  local redress="$1" dir="$2"
  shift 2
  exec {dev_out}< <("$redress" dev --data-dir "$dir" --intake-port 0 --remediation-port 0 --intake-metrics-port 0 --remediation-metrics-port 0 --log-level error "$@" 2>&1)
  dev_pid=$!
  local line
  while IFS= read -r -t 60 -u "$dev_out" line; do
    [[ "$line" == ready ]] && return 0
    printf '%s\n' "$line" >> "$dir.log"
  done
  cat "$dir.log" >&2 2>/dev/null
  echo "** redress dev exited or was not ready within 60 s" >&2
  return 1
}

stop_dev() {
  if [[ -n "$dev_pid" ]]; then
    kill -INT "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
}
