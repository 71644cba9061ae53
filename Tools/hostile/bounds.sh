#!/usr/bin/env bash
# Bounds on what a host can make the portal hold, against a real tesserad:
# starts one on 127.0.0.1:4510 (store 14510, wire 14511) with a short
# [limits] login_timeout and a small per-address connection bound, runs
# Tools/hostile/bounds.py against it, stops it. Prints PASS/FAIL lines and
# "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Tools/env.sh
WORK=$PWD/.build/hostile-bounds
rm -rf "$WORK"; mkdir -p "$WORK"
BIN=${TESSERAD_BIN:-${TESSERA_BIN_DIR:-$(swift build --show-bin-path)}/tesserad}
[ -x "$BIN" ] || swift build --product tesserad
PORT=${BOUNDS_PORT:-4510}
TARGET=iqn.2026-11.dev.tessera:bounds
cat > "$WORK/tesserad.toml" <<TOML
[node]
data_dir = "$WORK"
log_level = "info"

[[portal]]
listen = "127.0.0.1:$PORT"
group = 1

[cluster]
peer = "127.0.0.1:$((PORT + 10000))"
wire = "127.0.0.1:$((PORT + 10001))"

[iscsi]
queue_depth = 128
nop_in_interval = 0

[limits]
login_timeout = 2
max_connections = 64
max_connections_per_initiator_address = 8
max_immediate_commands = 16
write_buffer_high_water_mark = 4194304
write_buffer_low_water_mark = 1048576
max_read_bytes_in_flight = 16777216
max_write_bytes_in_flight = 16777216

[[target]]
name = "$TARGET"
[[target.lun]]
id = 0
size = "256MiB"
block_size = 512
backing = "memory"
TOML
"$BIN" --config "$WORK/tesserad.toml" >"$WORK/tesserad.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do iscsi-inq "iscsi://127.0.0.1:$PORT/$TARGET/0" >/dev/null 2>&1 && break; sleep 0.2; done
timeout 300 python3 Tools/hostile/bounds.py --port "$PORT" --target "$TARGET" --pid "$PID" --log "$WORK/tesserad.log" "$@"
rc=$?
kill -TERM $PID; wait $PID 2>/dev/null
exit $rc
