#!/usr/bin/env bash
# The Python client's end-to-end test (issue 12): grpcio against `redress dev` over standard gRPC on HTTP/2.
#
#   tools/python-client/run.sh [path/to/redress]     # default .build/debug/redress (build it with `swift build`)
#
# Installs grpcio, grpcio-tools and protobuf from PyPI when missing, generates Python stubs from Protos/ into a
# temporary directory (nothing generated is committed), starts `redress dev` on free ports under a temporary
# data directory, runs test_grpc_http2.py and the example, and stops the services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
redress="${1:-.build/debug/redress}"
[[ -x "$redress" ]] || { echo "** no $redress: run 'swift build' first" >&2; exit 1; }

python3 -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'grpcio>=1.60' 'grpcio-tools>=1.60' protobuf

work="$(mktemp -d)"
dev_pid=""
cleanup() {
  if [[ -n "$dev_pid" ]]; then kill -INT "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/stubs"
python3 -m grpc_tools.protoc --proto_path=Protos --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  Protos/redress/v1/common.proto Protos/redress/v1/intake.proto Protos/redress/v1/remediation.proto \
  Protos/google/rpc/status.proto Protos/google/rpc/error_details.proto

"$redress" dev --data-dir "$work/data" --intake-port 0 --remediation-port 0 \
  --intake-grpc-port 0 --remediation-grpc-port 0 --log-level error > "$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 600); do
  grep -qx ready "$work/dev.log" 2>/dev/null && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log" >&2; echo "** redress dev exited" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$work/dev.log" || { cat "$work/dev.log" >&2; echo "** redress dev not ready in 60 s" >&2; exit 1; }

export REDRESS_PROFILE="$work/data/client.json"
export PYTHONPATH="$work/stubs:tools/python-client"
python3 tools/python-client/test_grpc_http2.py
# The example in docs/CLIENTS.md, run as written: a first submit is accepted, the same key again is replayed.
python3 tools/python-client/redress_example.py docs-example | grep -q ' accepted$'
python3 tools/python-client/redress_example.py docs-example | grep -q ' replayed$'
echo "python client: ok"
