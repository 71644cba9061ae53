#!/usr/bin/env bash
# Runtime events per command on tesserad's event-loop threads: Swift task
# switches (swift_task_switch), task enqueues (swift_task_enqueue) and
# mallocs, counted with uprobes (`perf probe`, Debian's linux-perf; needs
# root). Counts, unlike timings, repeat from run to run on a shared
# machine, so this compares builds where cpu-per-request.sh only shows
# noise: a switch reads the task's executor preference under a lock, an
# enqueue is an NIO task and a loop turn, a malloc is a malloc.
#
# Each binary in turn serves one memory LUN; `qemu-img bench` sends a fixed
# number of requests (after a warm-up that does not count) while
# `perf stat --per-thread` counts the probes; the events of the threads
# named NIO-* (the event loops) are summed and divided by the requests.
# A benchmark: it prints figures, it does not pass/fail.
#
# Usage: Tools/bench/runtime-events.sh BINARY [BINARY ...]
#   WORKLOADS overrides the list of "name count depth bytes [-w]" entries.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY ...]" >&2; exit 2; }
BINS=("$@")
command -v perf >/dev/null || { echo "needs perf (linux-perf): bash Tools/install-deps.sh --bench" >&2; exit 2; }
WORK=$PWD/.build-bench/runtime-events
PORT=${PORT:-3293}
mkdir -p "$WORK"
WORKLOADS=${WORKLOADS:-"4KiB-read-QD32 20000 32 4096;4KiB-write-QD32 20000 32 4096 -w;4KiB-read-QD1 5000 1 4096"}
source Tools/bench/memory-lun.sh
memory_lun "$WORK" "$PORT" iqn.2026-11.dev.tessera:events

# The probes, in a group of their own so that they are removed afterwards.
CONCURRENCY=$(ldd "$1" | awk '/libswift_Concurrency.so/ { print $3 }')
LIBC=$(ldd "$1" | awk '/libc.so.6/ { print $3 }')
GROUP=tessera_events
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  perf probe -q -d "$GROUP:*" 2>/dev/null || true
}
trap cleanup EXIT
perf probe -q -d "$GROUP:*" 2>/dev/null || true
# -f: another probe may sit on the same address (then perf names this one
# switch_1 and so on), so the names are read back from the list.
perf probe -q -f -x "$CONCURRENCY" -a "$GROUP:switch=swift_task_switch"
perf probe -q -f -x "$CONCURRENCY" -a "$GROUP:enqueue=swift_task_enqueue"
perf probe -q -f -x "$LIBC" -a "$GROUP:malloc=malloc"
event() { perf probe -l "$GROUP:$1*" 2>/dev/null | awk 'NR == 1 { print $1 }'; }
SWITCH=$(event switch) ENQUEUE=$(event enqueue) MALLOC=$(event malloc)
[ -n "$SWITCH" ] && [ -n "$ENQUEUE" ] && [ -n "$MALLOC" ] || { echo "could not add the uprobes (root and linux-perf needed)" >&2; exit 1; }

# one BINARY COUNT DEPTH BYTES [-w] -> "switches enqueues mallocs" per request
one() {
  local bin=$1 count=$2 depth=$3 bytes=$4 write=${5:-}
  serve "$bin" "$depth" "$bytes" $write
  perf stat --per-thread -x, -e "$SWITCH" -e "$ENQUEUE" -e "$MALLOC" \
    -p "$PID" -o "$WORK/stat.csv" &
  local stat=$!
  sleep 0.3
  qemu-img bench -f raw $write -c "$count" -d "$depth" -s "$bytes" "$URL" >/dev/null
  kill -INT "$stat"; wait "$stat" 2>/dev/null || true
  stop_serving
  awk -F, -v n="$count" -v s="$SWITCH" -v e="$ENQUEUE" -v m="$MALLOC" '
    $1 ~ /^NIO-/ && $2 ~ /^[0-9]+$/ { c[$4] += $2 }
    END { printf "%.2f %.2f %.2f\n", c[s] / n, c[e] / n, c[m] / n }' "$WORK/stat.csv"
}

printf "%-18s %-40s %10s %10s %10s\n" workload binary switches enqueues mallocs
IFS=';' read -ra LIST <<< "$WORKLOADS"
for w in "${LIST[@]}"; do
  set -- $w; name=$1; shift
  for bin in "${BINS[@]}"; do
    read -r s e m <<< "$(one "$bin" "$@")"
    printf "%-18s %-40s %10s %10s %10s\n" "$name" "$(basename "$bin")" "$s" "$e" "$m"
  done
done
echo "(per request, on the event-loop threads; the warm-up and the login before it do not count)"
