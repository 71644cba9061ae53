#!/usr/bin/env bash
# Benchmark: what the kernel interface alone costs per O_DIRECT read, libaio
# against io_uring (liburing), outside any target: 4 KiB random reads at
# QD32 from a 512 MiB file, completions on an eventfd in an epoll loop, the
# two alternating. Prints IOPS and CPU time per read for each round. It
# reports figures, it does not pass/fail.
#
# Usage: Tools/bench/aio-vs-io_uring.sh [seconds-per-run (default 3)] [rounds (default 3)]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-3} ROUNDS=${2:-3}
WORK=$PWD/.build-bench/engine-probe
mkdir -p "$WORK"
[ -f /usr/include/liburing.h ] || { echo "needs liburing-dev: bash Tools/install-deps.sh --bench" >&2; exit 2; }
CC=${CC:-$(command -v cc || command -v gcc || command -v clang || echo /opt/swift/usr/bin/clang)}
"$CC" -O2 -o "$WORK/probe" Tools/bench/probes/aio-vs-io_uring.c -luring
IMG=$WORK/probe.img
if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" -ne $((512 * 1024 * 1024)) ]; then
  dd if=/dev/urandom of="$IMG" bs=1M count=512 status=none
fi
for _ in $(seq "$ROUNDS"); do
  "$WORK/probe" aio "$IMG" "$SECS"
  "$WORK/probe" uring "$IMG" "$SECS"
done
