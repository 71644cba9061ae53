#!/usr/bin/env bash
# The LUN's SCSI context across nodes: three real tesserad nodes from
# Targets/cluster-node{1,2,3}.toml, initiators on different nodes
# (Tools/lib/iscsi_client.py), persistent reservations of every type, PREEMPT
# (AND ABORT), CLEAR, READ FULL STATUS, REGISTER AND MOVE, SPC-2 RESERVE with
# LU reset and logout, concurrent registrations, task management, NOP-In, and
# libiscsi's MultipathIO and PR suites (see context-acceptance.py for the checks).
# Prints "PASS name"/"FAIL name" per check and "context: N passed, N failed".
# Usage: Tools/cluster/context-acceptance.sh [--tesserad PATH] [--base-port B] [--keep]
#                                           [--checks a,b,..] [--one-node]
#   --tesserad PATH (or TESSERAD=PATH) skips the build.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
CONFIG="${CONFIG:-debug}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tesserad) TESSERAD="$2"; shift 2 ;;
    --tesserad=*) TESSERAD="${1#--tesserad=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -n "${TESSERA_BIN_DIR:-}" ] && TESSERAD="${TESSERAD:-$TESSERA_BIN_DIR/tesserad}"
if [ -z "${TESSERAD:-}" ]; then
  swift build -c "$CONFIG" --product tesserad >/dev/null || { echo "build of tesserad failed"; echo "context: 0 passed, 1 failed"; exit 1; }
  TESSERAD="$(swift build -c "$CONFIG" --show-bin-path)/tesserad"
fi
[ -x "$TESSERAD" ] || { echo "FAIL no tesserad at $TESSERAD"; echo "context: 0 passed, 1 failed"; exit 1; }
for tool in iscsi-test-cu timeout; do
  command -v "$tool" >/dev/null || { echo "FAIL needs $tool: bash Tools/install-deps.sh --test"; echo "context: 0 passed, 1 failed"; exit 1; }
done
timeout -k 10 900 python3 Tools/cluster/context-acceptance.py --tesserad "$TESSERAD" "${args[@]}"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL context-acceptance.py timed out after 900 s"; echo "context: 0 passed, 1 failed"; }
exit $rc
