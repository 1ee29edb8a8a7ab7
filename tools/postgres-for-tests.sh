#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: initdb into a temporary directory, pg_ctl start on a free port
# (as the postgres user when run as root: initdb refuses root), trust authentication on 127.0.0.1 only.
#
#   eval "$(tools/postgres-for-tests.sh start)"   # exports REDRESS_TEST_POSTGRES_URL and REDRESS_TEST_POSTGRES_DIR
#   swift test
#   tools/postgres-for-tests.sh stop "$REDRESS_TEST_POSTGRES_DIR"
#
# The tests create a database of their own per test on it (TestPostgres.makeDatabase). Needs PostgreSQL's server
# binaries (Debian: apt-get install postgresql); REDRESS_POSTGRES_BIN overrides where they are.
set -euo pipefail

bin="${REDRESS_POSTGRES_BIN:-}"
if [[ -z "$bin" ]]; then
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$candidate/initdb" ]] && { bin="$candidate"; break; }
  done
fi
[[ -n "$bin" && -x "$bin/initdb" ]] || { echo "postgres-for-tests: no initdb (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    local quoted; printf -v quoted '%q ' "$@"
    runuser -u postgres -- /bin/sh -c "$quoted"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    dir="$(mktemp -d /tmp/redress-pg.XXXXXX)"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U redress --no-sync >"$dir.initdb.log" 2>&1 \
      || { cat "$dir.initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/data/server.log" \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >&2
    echo "export REDRESS_TEST_POSTGRES_URL='postgres://redress@127.0.0.1:$port/postgres?sslmode=disable'"
    echo "export REDRESS_TEST_POSTGRES_DIR='$dir'"
    echo "export REDRESS_POSTGRES_BIN='$bin'"
    ;;
  stop)
    dir="${2:?usage: postgres-for-tests.sh stop DIR}"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2 || true
    rm -rf "$dir" "$dir.initdb.log"
    ;;
  *)
    echo "usage: postgres-for-tests.sh start | stop DIR" >&2
    exit 64
    ;;
esac
