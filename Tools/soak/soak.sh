#!/usr/bin/env bash
# The soak: starts tesserad, runs Tools/soak/soak.py against it (N sessions of
# mixed verified reads and writes through every portal while hosts log out and
# in; the daemons' RSS, fds and the I/O rate sampled over time), stops what it
# started. Prints PASS/FAIL lines and "soak: N passed, M failed" last; exits
# non-zero on any failure.
#   --nodes 3 (default): three nodes from Targets/cluster-node{1,2,3}.toml
#     (Tools/cluster/localcluster.py), a 256 MiB LUN with two replicas, the
#     sessions spread over the three nodes' portals;
#   --nodes 1: one tesserad with four [[portal]]s (four portal groups) and a
#     256 MiB file-backed LUN.
# Usage: Tools/soak/soak.sh [--time SECONDS] [--sessions N] [--nodes 1|3] [--idle SECONDS] [--keep]
#                           [driver options]
#   --time: seconds of I/O (default 600); --keep: keep the work dir ($SOAK_WORK, default .build/soak);
#   --idle: wait this long between the start and the driver (a fresh node's RSS grows with its
#   store's Raft log for about 23 minutes, then stays: see the README's Soak section).
#   Other options go to soak.py (see its header). Ports: portals SOAK_PORT+1.. (4601..),
#   store/wire/admin from SOAK_PEER_PORT (14600). Binary: $TESSERAD_BIN, else the debug build.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Tools/env.sh
TIME=600 SESSIONS=64 NODES=3 KEEP=0 IDLE=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    --nodes) NODES="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --idle) IDLE="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
passed=0 failed=0
check() {  # check OK NAME DETAIL
  if [ "$1" = 0 ]; then passed=$((passed + 1)); echo "PASS $2${3:+: $3}"; else failed=$((failed + 1)); echo "FAIL $2${3:+: $3}"; fi
}
finish() { echo "soak: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
case "$NODES" in 1|3) ;; *) check 1 "soak: --nodes is 1 or 3" "got '$NODES'"; finish ;; esac
BIN=${TESSERAD_BIN:-${TESSERA_BIN_DIR:-$(swift build --show-bin-path)}/tesserad}
[ -x "$BIN" ] || swift build --product tesserad
PORT=${SOAK_PORT:-4600} PEER=${SOAK_PEER_PORT:-14600}
WORK=${SOAK_WORK:-$PWD/.build/soak}
rm -rf "$WORK"; mkdir -p "$WORK"
PIDS=() PORTALS=() LOGS=() NAMES=()

# stop_all: SIGTERM to every daemon started here, SIGKILL to any still there after 10 s
stop_all() {
  local pid i left=
  for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 100); do [ -d "/proc/${PIDS[$i]}" ] && ! grep -q '^State:.*Z' "/proc/${PIDS[$i]}/status" 2>/dev/null || break; sleep 0.1; done
    if [ -d "/proc/${PIDS[$i]}" ] && ! grep -q '^State:.*Z' "/proc/${PIDS[$i]}/status" 2>/dev/null; then
      kill -KILL "${PIDS[$i]}" 2>/dev/null; left+="${NAMES[$i]} "
    fi
  done
  wait 2>/dev/null
  PIDS=()
  [ -z "${left:-}" ]
}
trap 'stop_all >/dev/null' EXIT

if [ "$NODES" = 3 ]; then
  TARGET=iqn.2026-11.dev.tessera:cluster
  out=$(timeout 150 python3 Tools/cluster/localcluster.py up --work "$WORK" --tesserad "$BIN" \
        --base-port "$PORT" --peer-base-port "$PEER" --lun-size 256MiB 2>&1)
  rc=$?
  for i in 1 2 3; do
    [ -f "$WORK/node$i.pid" ] && PIDS+=("$(cat "$WORK/node$i.pid")") && NAMES+=("n$i")
    PORTALS+=("127.0.0.1:$((PORT + i))"); LOGS+=("$WORK/node$i.log")
  done
  check $rc "soak: three tesserad nodes start and log 'tesserad ready'" "$(echo "$out" | tail -4 | tr '\n' ' ')"
else
  TARGET=iqn.2026-11.dev.tessera:soak
  {
    printf '[node]\ndata_dir = "%s"\nlog_level = "info"\n\n' "$WORK"
    for i in 1 2 3 4; do printf '[[portal]]\nlisten = "127.0.0.1:%d"\ngroup = %d\n\n' $((PORT + i)) $i; done
    printf '[cluster]\npeer = "127.0.0.1:%d"\nwire = "127.0.0.1:%d"\n\n' $((PEER + 11)) $((PEER + 21))
    printf '[[target]]\nname = "%s"\n[[target.lun]]\nid = 0\nsize = "256MiB"\nbacking = "file"\npath = "lun0.img"\n' "$TARGET"
  } > "$WORK/tesserad.toml"
  "$BIN" --config "$WORK/tesserad.toml" >"$WORK/tesserad.log" 2>&1 &
  PIDS=($!) NAMES=(n1) LOGS=("$WORK/tesserad.log")
  for i in 1 2 3 4; do PORTALS+=("127.0.0.1:$((PORT + i))"); done
  for _ in $(seq 300); do grep -q 'tesserad ready' "$WORK/tesserad.log" && break; [ -d "/proc/${PIDS[0]}" ] || break; sleep 0.2; done
  grep -q 'tesserad ready' "$WORK/tesserad.log"
  check $? "soak: tesserad with four portals starts and logs 'tesserad ready'" "$(tail -2 "$WORK/tesserad.log" | tr '\n' ' ')"
fi

if [ "$failed" -eq 0 ] && [ "$IDLE" != 0 ]; then
  echo "  idle for $IDLE s before the driver starts"; sleep "$IDLE"
fi
if [ "$failed" -eq 0 ]; then
  dargs=(--time "$TIME" --sessions "$SESSIONS" --target "$TARGET")
  for p in "${PORTALS[@]}"; do dargs+=(--portal "$p"); done
  for i in "${!PIDS[@]}"; do dargs+=(--pid "${NAMES[$i]}=${PIDS[$i]}"); done
  for l in "${LOGS[@]}"; do dargs+=(--log "$l"); done
  # the driver bounds itself (logins, every command, the read-back); this is the backstop
  timeout -k 10 $(( ${TIME%.*} + 900 )) \
    python3 Tools/soak/soak.py "${dargs[@]}" "${args[@]}" 2>&1 | tee "$WORK/driver.log"
  grep -qE '^driver: [0-9]+ passed' "$WORK/driver.log"
  check $? "soak: the driver ran to its end" "$(grep -E '^driver: ' "$WORK/driver.log" || tail -3 "$WORK/driver.log" | tr '\n' ' ')"
  passed=$((passed + $(grep -c '^PASS' "$WORK/driver.log")))
  failed=$((failed + $(grep -c '^FAIL' "$WORK/driver.log")))
fi
names="${NAMES[*]}"
stop_all
check $? "soak: every tesserad ($names) stops within 10 s of SIGTERM"
if [ "$failed" -ne 0 ]; then
  for l in "${LOGS[@]}"; do
    grep -E ' (warning|error|critical) ' "$l" 2>/dev/null | tail -5 | sed "s|^|  $(basename "$l"): |" | cut -c1-300
  done
fi
[ "$KEEP" = 1 ] && echo "work dir kept: $WORK" || rm -rf "$WORK"
finish
