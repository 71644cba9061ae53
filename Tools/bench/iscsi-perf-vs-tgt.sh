#!/usr/bin/env bash
# Benchmark: tesserad vs Debian's tgt on the same backing file, in one run.
#
# Two I/O modes, so like is compared with like: "page cache" (tesserad
# direct_io = false, tgt's rdwr backend as shipped) and "O_DIRECT" (tesserad
# libaio + O_DIRECT, tgt rdwr with --bsoflags direct). For each mode and
# workload (4 KiB random read at QD32 and QD1, 1 MiB sequential read at QD4)
# runs libiscsi's iscsi-perf against each target and prints IOPS, MB/s, the
# target process's CPU time per I/O (utime+stime from /proc), and the
# tesserad/tgt ratios. A benchmark: it reports figures, it does not pass/fail.
#
# Usage: Tools/bench/iscsi-perf-vs-tgt.sh [seconds-per-run (default 10)]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
WORK=$PWD/.build-bench
mkdir -p "$WORK"
PORT_T=3270 PORT_G=3271 CTRL=17
IMG=$WORK/bench.img
SIZE_MB=512

command -v iscsi-perf >/dev/null && command -v tgtd >/dev/null || {
  echo "needs iscsi-perf (libiscsi-bin) and tgtd (tgt): bash Tools/install-deps.sh --test" >&2; exit 2; }

swift build -c release --product tesserad >/dev/null
BIN=$(swift build -c release --show-bin-path)/tesserad

if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" -ne $((SIZE_MB * 1024 * 1024)) ]; then
  echo "filling ${SIZE_MB} MiB backing file (so reads hit data, not holes)"
  dd if=/dev/urandom of="$IMG" bs=1M count=$SIZE_MB status=none
fi

PIDS=()
source Tools/lib/tgt.sh
cleanup() {
  tgt_stop
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run_perf NAME PID URL BLOCKS QD [-r]  -> prints "iops mbs cpu_us_per_io"
run_perf() {
  local pid=$1 url=$2 blocks=$3 qd=$4 rnd=${5:-}
  local before after out iops mbs
  before=$(cpu_ticks "$pid")
  out=$(timeout $((SECS + 30)) iscsi-perf -t "$SECS" -b "$blocks" -m "$qd" $rnd "$url" 2>&1 | tr '\r' '\n' | grep 'iops average' | tail -1)
  after=$(cpu_ticks "$pid")
  iops=$(echo "$out" | sed -E 's/.*iops average ([0-9]+).*/\1/')
  mbs=$(echo "$out" | sed -E 's/.*\(([0-9]+) MB\/s\).*/\1/')
  awk -v i="$iops" -v m="$mbs" -v t=$((after - before)) -v hz="$HZ" -v s="$SECS" \
    'BEGIN { ios = i * s; printf "%d %d %.1f\n", i, m, (ios > 0 ? t / hz * 1e6 / ios : 0) }'
}

start_targets() { # start_targets DIRECT(true|false)
  cat > "$WORK/tesserad.toml" <<TOML
[node]
data_dir = "$WORK"
log_level = "warning"
[[portal]]
listen = "127.0.0.1:$PORT_T"
group = 1
[[target]]
name = "iqn.2026-11.dev.tessera:bench"
[[target.lun]]
id = 0
size = "${SIZE_MB}MiB"
block_size = 512
backing = "file"
path = "$IMG"
direct_io = $1
TOML
  rm -rf "$WORK/store"
  "$BIN" --config "$WORK/tesserad.toml" > "$WORK/tesserad.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  local flags=""; [ "$1" = true ] && flags=direct
  tgt_start "$PORT_G" "$CTRL" "$IMG" "$WORK/tgtd.log" "$flags"
  GPID=$TGT_PID
  for _ in $(seq 50); do iscsi-inq "$T_URL" >/dev/null 2>&1 && break; sleep 0.2; done
}

stop_targets() {
  tgt_stop
  stop_pid "$TPID"
  PIDS=()
}

T_URL="iscsi://127.0.0.1:$PORT_T/iqn.2026-11.dev.tessera:bench/0"
G_URL="iscsi://127.0.0.1:$PORT_G/iqn.2026-11.dev.tessera:tgt/1"

printf '%-12s %-20s %12s %12s %12s %10s %10s %10s %7s %7s\n' mode workload "tessera IOPS" "tessera MB/s" \
  "tessera us/IO" "tgt IOPS" "tgt MB/s" "tgt us/IO" "IOPS x" "CPU x"
for mode in "page-cache false" "O_DIRECT true"; do
  set -- $mode
  label=$1 direct=$2
  start_targets "$direct"
  for w in "4KiB-randread-QD32 8 32 -r" "4KiB-randread-QD1 8 1 -r" "1MiB-seqread-QD4 2048 4"; do
    set -- $w
    name=$1 blocks=$2 qd=$3 rnd=${4:-}
    read -r ti tm tc < <(run_perf "$TPID" "$T_URL" "$blocks" "$qd" $rnd)
    read -r gi gm gc < <(run_perf "$GPID" "$G_URL" "$blocks" "$qd" $rnd)
    awk -v l="$label" -v n="$name" -v ti="$ti" -v tm="$tm" -v tc="$tc" -v gi="$gi" -v gm="$gm" -v gc="$gc" 'BEGIN {
      printf "%-12s %-20s %12d %12d %12.1f %10d %10d %10.1f %7.2f %7.2f\n", l, n, ti, tm, tc, gi, gm, gc,
        (gi > 0 ? ti / gi : 0), (gc > 0 ? tc / gc : 0) }'
  done
  stop_targets
done
echo "(IOPS x = tesserad/tgt, higher is better; CPU x = tesserad/tgt CPU time per I/O, lower is better."
echo " Both targets and the client share this machine's cores; compare figures within one run only.)"
