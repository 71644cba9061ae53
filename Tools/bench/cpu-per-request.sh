#!/usr/bin/env bash
# CPU time tesserad spends per request, for comparing two builds (A/B) on the
# same machine in one run, alternating so both see the same background load.
#
# (Instruction counts under valgrind would be steadier, but valgrind 3.19
# crashes in any Swift binary that starts a concurrency thread, so this
# reads the scheduler's run time instead.)
#
# Each binary in turn serves one memory LUN; `qemu-img bench` sends a fixed
# number of requests; the target's CPU time is the sum over its threads of
# /proc/PID/task/*/schedstat (nanoseconds, user + system) taken after login
# and after the run, so start-up and login do not count. Prints nanoseconds
# per request for each round and the median per binary.
#
# Usage: Tools/bench/cpu-per-request.sh BINARY_A BINARY_B [rounds (default 3)]
#   WORKLOADS overrides the list of "name count depth bytes [-w]" entries.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-3}
WORK=$PWD/.build-bench/cpu-per-request
PORT=${PORT:-3292}
mkdir -p "$WORK"
WORKLOADS=${WORKLOADS:-"4KiB-read-QD1 20000 1 4096;1MiB-read-QD4 2000 4 1048576;4KiB-write-QD1 20000 1 4096 -w"}
source Tools/bench/memory-lun.sh
memory_lun "$WORK" "$PORT" iqn.2026-11.dev.tessera:cpu
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'; }

PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT
# one BINARY COUNT DEPTH BYTES [-w] -> ns per request
one() {
  local bin=$1 count=$2 depth=$3 bytes=$4 write=${5:-}
  serve "$bin" "$depth" "$bytes" $write
  local before after
  before=$(cpu_ns "$PID")
  qemu-img bench -f raw $write -c "$count" -d "$depth" -s "$bytes" "$URL" >/dev/null
  after=$(cpu_ns "$PID")
  stop_serving
  echo $(( (after - before) / count ))
}
IFS=';' read -ra LIST <<< "$WORKLOADS"
for w in "${LIST[@]}"; do
  set -- $w; name=$1; shift
  as=() bs=()
  for _ in $(seq "$ROUNDS"); do as+=("$(one "$A" "$@")"); bs+=("$(one "$B" "$@")"); done
  median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  ma=$(median "${as[@]}") mb=$(median "${bs[@]}")
  awk -v n="$name" -v a="${as[*]}" -v b="${bs[*]}" -v ma="$ma" -v mb="$mb" 'BEGIN {
    printf "%-16s A %s (median %d) ns/request   B %s (median %d)   B/A %.3f\n", n, a, ma, b, mb, mb / ma }'
done
