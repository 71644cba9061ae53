#!/usr/bin/env bash
# Installs the Debian 12 packages Tessera needs, only those missing.
#   --run   build and run tesserad (default)
#   --test  also the real clients the tests use (libiscsi tools, qemu-img, tgt)
#   --bench also what Tools/bench needs beyond that (iperf3: the loopback stream;
#           linux-perf: the uprobes of runtime-events.sh; liburing-dev: the
#           engine probe of aio-vs-io_uring.sh)
set -euo pipefail
MODE=${1:---run}
RUN_PKGS=(libaio-dev libssl-dev libsqlite3-dev libdqlite-dev pkg-config)
TEST_PKGS=(libiscsi-bin qemu-utils qemu-block-extra tgt sg3-utils python3 procps)
BENCH_PKGS=(iperf3 linux-perf liburing-dev)
PKGS=("${RUN_PKGS[@]}")
[ "$MODE" = "--test" ] && PKGS+=("${TEST_PKGS[@]}")
[ "$MODE" = "--bench" ] && PKGS+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "note: swift is at /opt/swift/usr/bin (not on PATH); the scripts add it" >&2
  else
    echo "error: no Swift toolchain found: install Swift 6.x (swift.org) and put it on PATH" >&2
    exit 1
  fi
fi
