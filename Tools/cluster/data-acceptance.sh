#!/usr/bin/env bash
# The distributed LUN's data path: three real tesserad nodes from
# Targets/cluster-node{1,2,3}.toml, then qemu-img/qemu-io data through every
# portal, iscsi-test-cu MultipathIO across nodes, discovery and identity on
# every node, hostile peer input on a wire port under host I/O, and the whole
# iscsi-test-cu suite through node 2 (see data-acceptance.py for the checks).
# Prints "PASS name"/"FAIL name" per check and "data: N passed, N failed".
# Usage: Tools/cluster/data-acceptance.sh [--base-port B] [--keep] [--checks a,b,..] [--strip-new-keys]
#   TESSERAD=/path/to/tesserad skips the build.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
CONFIG="${CONFIG:-debug}"
[ -n "${TESSERA_BIN_DIR:-}" ] && TESSERAD="${TESSERAD:-$TESSERA_BIN_DIR/tesserad}"
if [ -z "${TESSERAD:-}" ]; then
  swift build -c "$CONFIG" --product tesserad >/dev/null || { echo "build of tesserad failed"; echo "data: 0 passed, 1 failed"; exit 1; }
  TESSERAD="$(swift build -c "$CONFIG" --show-bin-path)/tesserad"
fi
for tool in qemu-img qemu-io iscsi-ls iscsi-inq iscsi-readcapacity16 iscsi-test-cu cmp; do
  command -v "$tool" >/dev/null || { echo "FAIL needs $tool: bash Tools/install-deps.sh --test"; echo "data: 0 passed, 1 failed"; exit 1; }
done
timeout -k 10 900 python3 Tools/cluster/data-acceptance.py --tesserad "$TESSERAD" "$@"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL data-acceptance.py timed out after 900 s"; echo "data: 0 passed, 1 failed"; }
exit $rc
