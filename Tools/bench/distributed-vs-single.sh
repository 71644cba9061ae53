#!/usr/bin/env bash
# Benchmark: one single-node tesserad against the three-node cluster's
# distributed LUN, in one run, release build.
#
#   single   one tesserad, a 256 MiB file LUN, replicas = 1
#   cluster  Targets/cluster-node{1,2,3}.toml (Tools/cluster/localcluster.py),
#            the LUN resized to 256 MiB, replicas = 2, 8 MiB sub-units,
#            driven through node 1's portal (so about 2/3 of the I/O is
#            forwarded over the wire and every write goes to two nodes)
#
# Both LUNs are filled with random data first (reads hit data, writes
# overwrite). Workloads, 4 KiB, at QD32 and QD1:
#   random read   libiscsi's iscsi-perf -r (as Tools/bench/iscsi-perf-vs-tgt.sh)
#   random write  qemu-img bench -w: libiscsi 1.19's iscsi-perf only reads, and
#                 qemu-img bench has no random mode, so the offsets stride by
#                 7919 x 4 KiB modulo the LUN (every 4 KiB block once per cycle,
#                 scattered over every sub-unit)
#   strided read  qemu-img bench, the same pattern (reads and writes by one tool)
# Prints IOPS, cluster/single ratio, mean latency by Little's law (QD / IOPS) and
# the target CPU time per I/O (utime+stime; the cluster's is all three nodes).
# A benchmark: it reports and exits 0, it never passes or fails. Not in the test command.
#
# Usage: Tools/bench/distributed-vs-single.sh [seconds-per-run (default 10)]
#   TESSERAD=/path/to/tesserad skips the release build; STRIP_NEW_KEYS=1 drops
#   wire/replicas/sub_unit_size (a tesserad without the distributed LUN: both
#   "cluster" and "single" then serve local data; mechanics only).
#   Ports: single 33450 (store 33451), cluster base 33400 (BENCH_BASE_PORT).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
SECS=${1:-10}
WORK=$PWD/.build-bench/distributed
BASE=${BENCH_BASE_PORT:-33400}
PORT_S=$((BASE + 50))
SIZE_MB=256
T_SINGLE=iqn.2026-11.dev.tessera:bench-single
T_CLUSTER=iqn.2026-11.dev.tessera:cluster
STRIDE=$((4096 * 7919))

for tool in iscsi-perf qemu-img iscsi-inq python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool: bash Tools/install-deps.sh --test" >&2; exit 0; }
done
if [ -z "${TESSERAD:-}" ]; then
  swift build -c release --product tesserad >/dev/null || { echo "release build of tesserad failed" >&2; exit 0; }
  TESSERAD=$(swift build -c release --show-bin-path)/tesserad
fi
rm -rf "$WORK"; mkdir -p "$WORK/single" "$WORK/cluster"

SPID=
cleanup() {
  python3 Tools/cluster/localcluster.py down --work "$WORK/cluster" 2>/dev/null
  if [ -n "$SPID" ]; then
    kill "$SPID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
  fi
}
trap cleanup EXIT

strip() { if [ "${STRIP_NEW_KEYS:-0}" = 1 ]; then grep -vE '^\s*(wire|replicas|sub_unit_size)\s*='; else cat; fi; }

# --- the single node ---------------------------------------------------------
strip > "$WORK/single/tesserad.toml" <<TOML
[node]
data_dir = "$WORK/single"
log_level = "notice"
[[portal]]
listen = "127.0.0.1:$PORT_S"
group = 1
[cluster]
node_id = 1
peer = "127.0.0.1:$((PORT_S + 1))"
[[target]]
name = "$T_SINGLE"
[[target.lun]]
id = 0
size = "${SIZE_MB}MiB"
block_size = 512
backing = "file"
path = "single.img"
replicas = 1
TOML
"$TESSERAD" --config "$WORK/single/tesserad.toml" > "$WORK/single/tesserad.log" 2>&1 &
SPID=$!
S_URL="iscsi://127.0.0.1:$PORT_S/$T_SINGLE/0"
for _ in $(seq 150); do iscsi-inq "$S_URL" >/dev/null 2>&1 && break; sleep 0.2; done
iscsi-inq "$S_URL" >/dev/null 2>&1 || { echo "single-node tesserad did not start:"; tail -5 "$WORK/single/tesserad.log"; exit 0; }

# --- the cluster -------------------------------------------------------------
args=(up --work "$WORK/cluster" --tesserad "$TESSERAD" --base-port "$BASE" --lun-size "${SIZE_MB}MiB")
[ "${STRIP_NEW_KEYS:-0}" = 1 ] && args+=(--strip-new-keys)
python3 Tools/cluster/localcluster.py "${args[@]}" > "$WORK/cluster/up.log" 2>&1 ||
  { echo "the cluster did not start:"; cat "$WORK/cluster/up.log"; exit 0; }
C_URL="iscsi://127.0.0.1:$((BASE + 1))/$T_CLUSTER/0"
CPIDS=$(cat "$WORK"/cluster/node*.pid)

echo "filling both LUNs with ${SIZE_MB} MiB of random data"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$WORK/fill.img"
qemu-img convert -n -f raw -O raw "$WORK/fill.img" "$S_URL" || echo "note: filling the single LUN failed"
qemu-img convert -n -f raw -O raw "$WORK/fill.img" "$C_URL" || echo "note: filling the cluster LUN failed"
rm -f "$WORK/fill.img"

HZ=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }

# measure KIND URL QD PIDS... -> "iops cpu_us_per_io" (0 0 when the run failed)
measure() {
  local kind=$1 url=$2 qd=$3; shift 3
  local before after iops out secs n
  before=$(ticks "$@")
  case $kind in
    perf-read)
      out=$(timeout $((SECS + 30)) iscsi-perf -t "$SECS" -b 8 -m "$qd" -r "$url" 2>&1 | tr '\r' '\n' | grep 'iops average' | tail -1)
      iops=$(echo "$out" | sed -nE 's/.*iops average ([0-9]+).*/\1/p')
      ;;
    bench-read|bench-write)
      local w=""; [ "$kind" = bench-write ] && w=-w
      # calibrate: a short run, then enough requests for about SECS seconds
      n=$((qd > 1 ? 4000 : 1000))
      secs=$(timeout 120 qemu-img bench -f raw $w -c "$n" -d "$qd" -s 4096 -S "$STRIDE" "$url" 2>&1 | sed -nE 's/^Run completed in ([0-9.]+) seconds.*/\1/p')
      if [ -n "$secs" ]; then
        n=$(awk -v n="$n" -v s="$secs" -v t="$SECS" 'BEGIN { c = int(n / (s > 0 ? s : 0.001) * t); print (c < 1000 ? 1000 : c) }')
        before=$(ticks "$@")
        secs=$(timeout $((SECS * 4 + 60)) qemu-img bench -f raw $w -c "$n" -d "$qd" -s 4096 -S "$STRIDE" "$url" 2>&1 | sed -nE 's/^Run completed in ([0-9.]+) seconds.*/\1/p')
      fi
      iops=$([ -n "$secs" ] && awk -v n="$n" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
      ;;
  esac
  after=$(ticks "$@")
  awk -v i="${iops:-0}" -v t=$((after - before)) -v hz="$HZ" -v s="${secs:-$SECS}" 'BEGIN {
    ios = i * s; printf "%d %.1f\n", i, (ios > 0 ? t / hz * 1e6 / ios : 0) }'
}

printf '%-34s %12s %12s %9s %12s %12s %10s %10s\n' workload "single IOPS" "cluster IOPS" "cluster x" \
  "single lat" "cluster lat" "single CPU" "cluster CPU"
for w in "4KiB random read QD32 (iscsi-perf)|perf-read|32" "4KiB random read QD1 (iscsi-perf)|perf-read|1" \
         "4KiB random write QD32 (qemu-img)|bench-write|32" "4KiB random write QD1 (qemu-img)|bench-write|1" \
         "4KiB strided read QD32 (qemu-img)|bench-read|32" "4KiB strided read QD1 (qemu-img)|bench-read|1"; do
  IFS='|' read -r name kind qd <<<"$w"
  # shellcheck disable=SC2086
  read -r si sc < <(measure "$kind" "$S_URL" "$qd" $SPID)
  # shellcheck disable=SC2086
  read -r ci cc < <(measure "$kind" "$C_URL" "$qd" $CPIDS)
  awk -v n="$name" -v qd="$qd" -v si="$si" -v ci="$ci" -v sc="$sc" -v cc="$cc" 'BEGIN {
    sl = (si > 0 ? qd / si * 1e6 : 0); cl = (ci > 0 ? qd / ci * 1e6 : 0)
    printf "%-34s %12d %12d %9.2f %10.0fus %10.0fus %8.1fus %8.1fus\n", n, si, ci, (si > 0 ? ci / si : 0), sl, cl, sc, cc }'
done
echo "(cluster x = cluster IOPS / single IOPS; lat = mean latency by Little's law, QD / IOPS; CPU = target CPU"
echo " time per I/O, the cluster's summed over its three nodes. Client and targets share this machine's cores:"
echo " compare figures within one run only. $(basename "$TESSERAD") = $TESSERAD)"
exit 0
