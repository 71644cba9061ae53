#!/usr/bin/env bash
# Store failover rehearsal with real processes (store only, no iSCSI):
# 3 dqlite node processes on 127.0.0.1, a writer committing idempotent rows as
# fast as it can, kill -9 the leader KILLS times (restarting it each time,
# timing the first commit after each kill), SIGSTOP the leader and resume it,
# verify every acknowledged write is present exactly once, 2 of 3 down ->
# survivor refuses writes, kill -9 all three and restart -> all state there.
# Usage: Tools/bench/store-kill9.sh [KILLS=20] [BASE_PORT=29700]
set -uo pipefail
cd "$(dirname "$0")/../.."
KILLS="${KILLS:-20}"
BASE_PORT="${BASE_PORT:-29700}"
CONFIG="${CONFIG:-debug}"
swift build -c "$CONFIG" --product tessera-store-bench >/dev/null || exit 1
BIN="$(swift build -c "$CONFIG" --show-bin-path)/tessera-store-bench"
WORK="$(mktemp -d /tmp/tessera-store-kill9.XXXXXX)"
SEEDS="127.0.0.1:$((BASE_PORT+1)),127.0.0.1:$((BASE_PORT+2)),127.0.0.1:$((BASE_PORT+3))"
declare -A PID
WRITER=""

start_node() {  # id
  local id=$1 join=""
  [ "$id" != 1 ] && join="--join 127.0.0.1:$((BASE_PORT+1))"
  "$BIN" node --id "$id" --address "127.0.0.1:$((BASE_PORT+id))" --data "$WORK/node$id" $join \
    >>"$WORK/node$id.log" 2>&1 &
  PID[$id]=$!
}
cleanup() {
  [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
  for id in 1 2 3; do [ -n "${PID[$id]:-}" ] && kill -9 "${PID[$id]}" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

start_node 1; sleep 1; start_node 2; sleep 1; start_node 3; sleep 2
"$BIN" writer --seeds "$SEEDS" --log "$WORK/acked.log" >"$WORK/writer.log" 2>&1 &
WRITER=$!
sleep 2

FAILOVERS=()
for k in $(seq 1 "$KILLS"); do
  leader=$("$BIN" leader --seeds "$SEEDS") || { echo "no leader before kill $k"; exit 1; }
  before=$(wc -l <"$WORK/acked.log")
  t0=$(now_ms)
  kill -9 "${PID[$leader]}"; wait "${PID[$leader]}" 2>/dev/null
  # Failover time: until the writer's next acknowledgement.
  # +1: one commit may have been in flight on the old leader when it died.
  while [ "$(wc -l <"$WORK/acked.log")" -le "$((before + 1))" ]; do
    sleep 0.01
    [ $(( $(now_ms) - t0 )) -gt 15000 ] && { echo "kill $k: no commit within 15 s"; exit 1; }
  done
  took=$(( $(now_ms) - t0 )); FAILOVERS+=("$took")
  echo "kill -9 $k: leader node$leader, writes resumed after ${took} ms"
  start_node "$leader"; sleep 1
done

leader=$("$BIN" leader --seeds "$SEEDS")
echo "SIGSTOP leader node$leader for 3 s"
kill -STOP "${PID[$leader]}"; sleep 3; kill -CONT "${PID[$leader]}"; sleep 1
kill "$WRITER"; wait "$WRITER" 2>/dev/null; WRITER=""
"$BIN" verify --seeds "$SEEDS" --log "$WORK/acked.log" || { echo "FAIL: acknowledged writes lost or duplicated"; exit 1; }

sorted=$(printf '%s\n' "${FAILOVERS[@]}" | sort -n)
n=${#FAILOVERS[@]}
echo "failover over $n kills: p50 $(echo "$sorted" | sed -n "$(( (n+1)/2 ))p") ms, max $(echo "$sorted" | tail -1) ms"

two=$(for id in 1 2 3; do echo "$id"; done | head -2)
for id in $two; do kill -9 "${PID[$id]}"; done; sleep 1
if "$BIN" write-once --seeds "$SEEDS" --deadline-ms 3000; then echo "FAIL: survivor accepted a write without quorum"; exit 1; fi
echo "2 of 3 down: survivor refused writes (OK)"

for id in 1 2 3; do kill -9 "${PID[$id]}" 2>/dev/null; done; wait 2>/dev/null
start_node 1; start_node 2; start_node 3; sleep 3
"$BIN" verify --seeds "$SEEDS" --log "$WORK/acked.log" || { echo "FAIL: state lost after kill -9 of all nodes"; exit 1; }
echo "kill -9 all and restart: all acknowledged state present (OK)"
rm -rf "$WORK"
