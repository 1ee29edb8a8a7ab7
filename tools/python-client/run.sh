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
source tools/dev-for-tests.sh
trap 'stop_dev; rm -rf "$work"' EXIT

mkdir -p "$work/stubs"
python3 -m grpc_tools.protoc --proto_path=Protos --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  Protos/redress/v1/common.proto Protos/redress/v1/intake.proto Protos/redress/v1/remediation.proto \
  Protos/google/rpc/status.proto Protos/google/rpc/error_details.proto

start_dev "$redress" "$work/data" --intake-grpc-port 0 --remediation-grpc-port 0

export REDRESS_PROFILE="$work/data/client.json"
export PYTHONPATH="$work/stubs:tools/python-client"
python3 tools/python-client/test_grpc_http2.py
# The example in docs/CLIENTS.md, run as written: a first submit is accepted, the same key again is replayed.
python3 tools/python-client/redress_example.py docs-example | grep -q ' accepted$'
python3 tools/python-client/redress_example.py docs-example | grep -q ' replayed$'
echo "python client: ok"
