#!/usr/bin/env bash
# Regenerates the Swift code for every .proto file under Protos/.
#
# The build never runs protoc: the output of this script is committed. Run it after editing a .proto file
# and commit the .proto together with the regenerated Swift.
#
#   tools/generate-protos.sh
#
# Environment:
#   PLUGIN_BIN  a directory holding already-built protoc-gen-swift and protoc-gen-grpc-swift-2 (they must be
#               swift-protobuf 1.39.0 and grpc-swift-protobuf 2.4.1). Without it the plugins are built in
#               release mode in the scratch package .build-protoc-plugins/ (about a minute on 2 cores).
set -euo pipefail

SWIFT_PROTOBUF_VERSION="1.39.0"
GRPC_SWIFT_PROTOBUF_VERSION="2.4.1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf -- '** %s\n' "$*" >&2; }
fatal() { printf -- '** ERROR: %s\n' "$*" >&2; exit 1; }

# The .proto files that become the public RedressSchemas module. Intake and remediation protos join this list.
schema_protos=(
  grpc/health/v1/health.proto
  redress/v1/common.proto
  redress/v1/intake.proto
  redress/v1/remediation.proto
  redress/v1/webhooks.proto
)
schema_out="Sources/RedressSchemas"

# The gRPC interop test service, compiled into the wire's test target only.
test_protos=(
  grpc/testing/empty.proto
  grpc/testing/messages.proto
  grpc/testing/test.proto
)
test_out="Tests/RedressWireTests/Generated"

install_protoc() {
  if command -v protoc >/dev/null 2>&1; then
    return
  fi
  log "protoc not found; installing protobuf-compiler with apt-get"
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends protobuf-compiler
}

# protoc finds google/protobuf/*.proto (Timestamp) in libprotobuf-dev; without it every file fails after the
# old output was deleted, so check first.
install_well_known_types() {
  if [[ -f /usr/include/google/protobuf/timestamp.proto ]]; then
    return
  fi
  log "google/protobuf/timestamp.proto not found; installing libprotobuf-dev with apt-get"
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends libprotobuf-dev
}

build_plugins() {
  local scratch="$root/.build-protoc-plugins"
  mkdir -p "$scratch/Sources/Placeholder"
  # A package needs at least one target of its own; the plugins are products of its dependencies.
  cat > "$scratch/Package.swift" <<EOF
// swift-tools-version:6.1
// Written by tools/generate-protos.sh: builds the protoc plugins the committed generated code came from.
import PackageDescription

let package = Package(
  name: "protoc-plugins",
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf.git", exact: "$SWIFT_PROTOBUF_VERSION"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "$GRPC_SWIFT_PROTOBUF_VERSION"),
  ],
  targets: [.target(name: "Placeholder")]
)
EOF
  echo "// Intentionally empty." > "$scratch/Sources/Placeholder/Placeholder.swift"

  log "building protoc-gen-swift $SWIFT_PROTOBUF_VERSION and protoc-gen-grpc-swift-2 $GRPC_SWIFT_PROTOBUF_VERSION"
  swift build --package-path "$scratch" -c release --product protoc-gen-swift >&2
  swift build --package-path "$scratch" -c release --product protoc-gen-grpc-swift-2 >&2
  swift build --package-path "$scratch" -c release --show-bin-path
}

check_plugin_version() {
  local plugin="$1" expected="$2" actual
  [[ -x "$plugin" ]] || fatal "$plugin is missing or not executable"
  actual="$("$plugin" --version)"
  [[ "$actual" == *" $expected" ]] || fatal "$plugin reports '$actual'; expected version $expected"
}

# generate VISIBILITY OUT PROTO...
generate() {
  local visibility="$1" out="$2"
  shift 2
  mkdir -p "$out"
  # Start from an empty slate so a removed or renamed .proto leaves no stale Swift behind.
  find "$out" -maxdepth 1 \( -name '*.pb.swift' -o -name '*.grpc.swift' \) -delete

  local options="Visibility=$visibility,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true"
  local command=(
    protoc --proto_path=Protos
    "--plugin=protoc-gen-swift=$bin/protoc-gen-swift"
    "--plugin=protoc-gen-grpc-swift-2=$bin/protoc-gen-grpc-swift-2"
    "--swift_out=$out" "--swift_opt=$options"
    "--grpc-swift-2_out=$out" "--grpc-swift-2_opt=$options,Server=true,Client=true"
    "$@"
  )
  log "${command[*]}"
  "${command[@]}"
}

install_protoc
install_well_known_types
log "using $(protoc --version)"

if [[ -n "${PLUGIN_BIN:-}" ]]; then
  bin="$(cd "$PLUGIN_BIN" && pwd)"
  log "using prebuilt plugins from $bin"
else
  bin="$(build_plugins)"
fi
check_plugin_version "$bin/protoc-gen-swift" "$SWIFT_PROTOBUF_VERSION"
check_plugin_version "$bin/protoc-gen-grpc-swift-2" "$GRPC_SWIFT_PROTOBUF_VERSION"

generate Public "$schema_out" "${schema_protos[@]}"
generate Internal "$test_out" "${test_protos[@]}"

log "done; commit Protos/ together with the regenerated files in $schema_out and $test_out"
