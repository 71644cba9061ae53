#!/usr/bin/env bash
# Commit latency (p50/p99) of single-row writes through the dqlite leader and
# failover time over leader stops, on a local 3-node cluster (one process,
# 127.0.0.1). Usage: Tools/bench/store-commit-latency.sh [--writes N] [--kills K]
# CONFIG=release for optimised numbers (debug by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG="${CONFIG:-debug}"
swift build -c "$CONFIG" --product tessera-store-bench >/dev/null
exec "$(swift build -c "$CONFIG" --show-bin-path)/tessera-store-bench" "$@"
