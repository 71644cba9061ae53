#!/usr/bin/env bash
# The admin API and the tessera CLI against three real tesserad nodes from
# Targets/cluster-node{1,2,3}.toml with a token in every [admin]: auth (401s),
# the same answers through node 2 and node 3, ACL and per-initiator CHAP set with
# the CLI through one node and in force for iscsi-inq logins through another, no
# secret or token in any answer or log, and a SIGKILLed node 1 seen through the fallback node (see
# admin-acceptance.py for the checks).
# Prints "PASS name"/"FAIL name" per check and "admin: N passed, N failed".
# Usage: Tools/cluster/admin-acceptance.sh [--base-port B] [--portal-base P] [--keep] [--checks a,b,..] [--samples DIR]
#   TESSERAD=/path/to/tesserad TESSERA=/path/to/tessera skip the build.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
CONFIG="${CONFIG:-debug}"
if [ -n "${TESSERA_BIN_DIR:-}" ]; then
  TESSERAD="${TESSERAD:-$TESSERA_BIN_DIR/tesserad}"
  TESSERA="${TESSERA:-$TESSERA_BIN_DIR/tessera}"
fi
if [ -z "${TESSERAD:-}" ] || [ -z "${TESSERA:-}" ]; then
  swift build -c "$CONFIG" --product tesserad >/dev/null || { echo "FAIL build of tesserad"; echo "admin: 0 passed, 1 failed"; exit 1; }
  swift build -c "$CONFIG" --product tessera >/dev/null || { echo "FAIL build of tessera"; echo "admin: 0 passed, 1 failed"; exit 1; }
  BIN="$(swift build -c "$CONFIG" --show-bin-path)"
  TESSERAD="${TESSERAD:-$BIN/tesserad}"
  TESSERA="${TESSERA:-$BIN/tessera}"
fi
timeout -k 10 600 python3 Tools/cluster/admin-acceptance.py --tesserad "$TESSERAD" --tessera "$TESSERA" "$@"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL admin-acceptance.py timed out after 600 s"; echo "admin: 0 passed, 1 failed"; }
exit $rc
