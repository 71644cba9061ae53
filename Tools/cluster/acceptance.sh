#!/usr/bin/env bash
# Store-cluster acceptance: 3 real tesserad processes on 127.0.0.1 as one cluster
# (see acceptance.py for the checks). Prints "N passed, N failed".
# Usage: Tools/cluster/acceptance.sh [--kills 20] [--base-port 29800] [--keep]
set -uo pipefail
cd "$(dirname "$0")/../.."
CONFIG="${CONFIG:-debug}"
BIN="${TESSERA_BIN_DIR:-}"
if [ -z "$BIN" ]; then
  swift build -c "$CONFIG" --product tesserad >/dev/null || { echo "build of tesserad failed"; exit 1; }
  swift build -c "$CONFIG" --product tessera-store-bench >/dev/null || { echo "build of tessera-store-bench failed"; exit 1; }
  BIN="$(swift build -c "$CONFIG" --show-bin-path)"
fi
exec timeout 600 python3 Tools/cluster/acceptance.py --tesserad "$BIN/tesserad" --bench "$BIN/tessera-store-bench" "$@"
