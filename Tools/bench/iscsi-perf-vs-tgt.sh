#!/usr/bin/env bash
# Benchmark: tesserad vs Debian's tgt on the same backing file, in one run.
#
# Two I/O modes, so like is compared with like: "page cache" (tesserad
# direct_io = false, tgt's rdwr backend as shipped) and "O_DIRECT" (tesserad
# libaio + O_DIRECT, tgt rdwr with --bsoflags direct). For each mode and
# workload it prints IOPS, MB/s (2^20 bytes, as iscsi-perf counts), the
# target process's CPU time per I/O (utime+stime from /proc), and the
# tesserad/tgt ratios:
#   reads   libiscsi's iscsi-perf: 4 KiB random at QD32 and QD1, 1 MiB
#           sequential at QD4
#   writes  qemu-img bench -w (Debian's iscsi-perf cannot write): 4 KiB at
#           QD32 and QD1 with offsets striding by 7919 x 4 KiB modulo the LUN
#           (qemu-img bench has no random mode; the stride visits every 4 KiB
#           block once per cycle), 1 MiB sequential at QD4. Each run writes its
#           own byte pattern; afterwards every block it wrote is read back from
#           the backing file and compared ("check": ok, or how many differ).
# Before the targets start, a loopback TCP stream (iperf3, one connection over
# 127.0.0.1, 1 MiB writes) gives the ceiling a single connection could reach
# on this machine; each mode's 1 MiB sequential read is printed as a fraction
# of it. (A python3 socket pair, used before, reached only a third of
# iperf3's figure: the interpreter, not the kernel, was its limit.)
# A benchmark: it reports figures, it does not pass/fail.
#
# Usage: Tools/bench/iscsi-perf-vs-tgt.sh [seconds-per-run (default 10)]
#   TESSERAD=/path/to/tesserad skips the release build.
#   ONLY=reads or ONLY=writes runs half the workloads; MODES="page-cache" or
#   MODES="O_DIRECT" one I/O mode.
#   PORT_T, PORT_G (iSCSI portals, default 3270/3271) and CTRL (tgtd's
#   control port number, default 17) keep concurrent runs apart.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
WORK=$PWD/.build-bench
mkdir -p "$WORK"
PORT_T=${PORT_T:-3270} PORT_G=${PORT_G:-3271} CTRL=${CTRL:-17}
ONLY=${ONLY:-all} MODES=${MODES:-page-cache O_DIRECT}
IMG=$WORK/bench.img
SIZE_MB=512

for tool in iscsi-perf tgtd qemu-img python3 iperf3; do
  command -v "$tool" >/dev/null || {
    echo "needs iscsi-perf (libiscsi-bin), tgtd (tgt), qemu-img (qemu-utils), python3 and iperf3: bash Tools/install-deps.sh --bench" >&2
    exit 2
  }
done

if [ -n "${TESSERAD:-}" ]; then
  BIN=$TESSERAD
else
  swift build -c release --product tesserad >/dev/null
  BIN=$(swift build -c release --show-bin-path)/tesserad
fi

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
STRIDE=$((4096 * 7919))

# qemu_bench ARGS... -> seconds the run took ("" when it failed)
qemu_bench() {
  timeout $((SECS * 4 + 60)) qemu-img bench -f raw "$@" 2>&1 |
    sed -nE 's/^Run completed in ([0-9.]+) seconds.*/\1/p'
}

# run_write PID URL BYTES QD STEP PATTERN -> "iops mbs cpu_us_per_io count" (count requests, from offset 0)
run_write() {
  local pid=$1 url=$2 bytes=$3 qd=$4 step=$5 pattern=$6
  local n secs before after
  # calibrate with a short run, then enough requests for about SECS seconds
  n=$((bytes >= 1048576 ? 64 : (qd > 1 ? 4000 : 1000)))
  secs=$(qemu_bench -w --pattern="$pattern" -c "$n" -d "$qd" -s "$bytes" -S "$step" "$url")
  [ -n "$secs" ] || { echo "0 0 0 0"; return; }
  n=$(awk -v n="$n" -v s="$secs" -v t="$SECS" 'BEGIN { c = int(n / (s > 0 ? s : 0.001) * t); print (c < n ? n : c) }')
  before=$(cpu_ticks "$pid")
  secs=$(qemu_bench -w --pattern="$pattern" -c "$n" -d "$qd" -s "$bytes" -S "$step" "$url")
  after=$(cpu_ticks "$pid")
  [ -n "$secs" ] || { echo "0 0 0 0"; return; }
  awk -v n="$n" -v s="$secs" -v b="$bytes" -v t=$((after - before)) -v hz="$HZ" \
    'BEGIN { printf "%d %d %.1f %d\n", n / s, n / s * b / 1048576, t / hz * 1e6 / n, n }'
}

# verify_writes COUNT BYTES STEP PATTERN -> "ok" or "BAD(k/m)": the blocks the run wrote hold its pattern
verify_writes() {
  python3 - "$IMG" "$@" <<'PY'
import mmap, sys
path, count, size, step, pattern = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5], 0)
if count == 0:
    print("no-run"); sys.exit()
with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    length = len(m)
    offsets = {(i * step) % length for i in range(count)}  # qemu-img bench: offset += step, modulo the size
    want = bytes([pattern]) * size
    bad = sum(1 for o in offsets if m[o:o + size] != want)
print("ok" if bad == 0 else f"BAD({bad}/{len(offsets)})")
PY
}

# A loopback TCP stream through one connection, 1 MiB writes for about 3 s -> MB/s (2^20),
# as iperf3's receiver counted it
loopback_stream() {
  local port=$((PORT_T + 2000)) server
  iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  server=$!
  # Retried while the server starts; each attempt bounded, so a client that
  # hangs cannot stall the run. The one-off server is stopped either way
  # (once a run had every attempt fail and the script waited on it for good).
  for _ in $(seq 50); do timeout 20 iperf3 -c 127.0.0.1 -p "$port" -t "$(( SECS < 3 ? SECS : 3 ))" -l 1M -J 2>/dev/null \
      > "$WORK/iperf3.json" && break; sleep 0.1; done
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  python3 -c '
import json, sys
try: print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 8 / (1 << 20)))
except (OSError, ValueError, KeyError): print(0)' "$WORK/iperf3.json"
}

LOOP_MBS=$(loopback_stream)
echo "loopback TCP stream (iperf3, one connection, 1 MiB writes): $LOOP_MBS MB/s"

printf '%-12s %-20s %12s %12s %12s %10s %10s %10s %7s %7s %s\n' mode workload "tessera IOPS" "tessera MB/s" \
  "tessera us/IO" "tgt IOPS" "tgt MB/s" "tgt us/IO" "IOPS x" "CPU x" "check (tessera/tgt)"
row() { # row LABEL NAME ti tm tc gi gm gc [check]
  awk -v l="$1" -v n="$2" -v ti="$3" -v tm="$4" -v tc="$5" -v gi="$6" -v gm="$7" -v gc="$8" -v c="${9:-}" 'BEGIN {
    printf "%-12s %-20s %12d %12d %12.1f %10d %10d %10.1f %7.2f %7.2f %s\n", l, n, ti, tm, tc, gi, gm, gc,
      (gi > 0 ? ti / gi : 0), (gc > 0 ? tc / gc : 0), c }'
}
SEQ_READ=()
pattern=16
for mode in "page-cache false" "O_DIRECT true"; do
  set -- $mode
  label=$1 direct=$2
  case " $MODES " in *" $label "*) ;; *) continue ;; esac
  # Page-cache reads measure the cache, not the disk: both targets start with
  # the whole file cached (a write run or another job may have evicted it).
  [ "$direct" = false ] && cat "$IMG" > /dev/null
  start_targets "$direct"
  [ "$ONLY" = writes ] || for w in "4KiB-randread-QD32 8 32 -r" "4KiB-randread-QD1 8 1 -r" "1MiB-seqread-QD4 2048 4"; do
    set -- $w
    name=$1 blocks=$2 qd=$3 rnd=${4:-}
    read -r ti tm tc < <(run_perf "$TPID" "$T_URL" "$blocks" "$qd" $rnd)
    read -r gi gm gc < <(run_perf "$GPID" "$G_URL" "$blocks" "$qd" $rnd)
    row "$label" "$name" "$ti" "$tm" "$tc" "$gi" "$gm" "$gc"
    [ "$blocks" = 2048 ] && SEQ_READ+=("$label $tm $gm")
  done
  [ "$ONLY" = reads ] || for w in "4KiB-randwrite-QD32 4096 32 $STRIDE" "4KiB-randwrite-QD1 4096 1 $STRIDE" "1MiB-seqwrite-QD4 1048576 4 1048576"; do
    set -- $w
    name=$1 bytes=$2 qd=$3 step=$4
    pattern=$((pattern + 1)); pt=$(printf '0x%02x' "$pattern")
    read -r ti tm tc tn < <(run_write "$TPID" "$T_URL" "$bytes" "$qd" "$step" "$pt")
    tcheck=$(verify_writes "$tn" "$bytes" "$step" "$pt")
    pattern=$((pattern + 1)); pg=$(printf '0x%02x' "$pattern")
    read -r gi gm gc gn < <(run_write "$GPID" "$G_URL" "$bytes" "$qd" "$step" "$pg")
    gcheck=$(verify_writes "$gn" "$bytes" "$step" "$pg")
    row "$label" "$name" "$ti" "$tm" "$tc" "$gi" "$gm" "$gc" "$tcheck/$gcheck"
  done
  stop_targets
done
for s in "${SEQ_READ[@]}"; do
  set -- $s
  awk -v l="$1" -v t="$2" -v g="$3" -v lo="$LOOP_MBS" 'BEGIN {
    printf "%-12s 1MiB-seqread-QD4 of the loopback stream: tesserad %.2f, tgt %.2f\n", l, (lo > 0 ? t / lo : 0), (lo > 0 ? g / lo : 0) }'
done
echo "(IOPS x = tesserad/tgt, higher is better; CPU x = tesserad/tgt CPU time per I/O, lower is better."
echo " Both targets and the client share this machine's cores; compare figures within one run only.)"
