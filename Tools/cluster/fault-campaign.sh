#!/usr/bin/env bash
# The loopback fault campaign: three real tesserad nodes from
# Targets/cluster-node{1,2,3}.toml, a verifying writer through two portals on
# two nodes (Tools/lib/verifying_writer.py), and per round a random node
# kill -9'd (every 4th round SIGSTOPped for 3.5 s instead), restarted, and the
# cluster waited for until /health says no replica is stale or resyncing and no
# node is dead; then the whole LUN read back through two nodes
# (see fault-campaign.py for the checks and the measurements).
# Prints "PASS name"/"FAIL name" per check and "failover: N passed, N failed".
# Usage: Tools/cluster/fault-campaign.sh [--tesserad PATH] [--base-port 3360] [--rounds N] [--seed S]
#                                        [--kill-only] [--no-wait-resync] [--keep] [--json FILE]
#   Builds nothing: --tesserad PATH, else $TESSERAD, else $(swift build --show-bin-path)/tesserad.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
CONFIG="${CONFIG:-debug}"
args=()
rounds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --tesserad) TESSERAD="$2"; shift 2 ;;
    --tesserad=*) TESSERAD="${1#--tesserad=}"; shift ;;
    --rounds) rounds="$2"; args+=("$1" "$2"); shift 2 ;;
    --rounds=*) rounds="${1#--rounds=}"; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -n "${TESSERA_BIN_DIR:-}" ] && TESSERAD="${TESSERAD:-$TESSERA_BIN_DIR/tesserad}"
if [ -z "${TESSERAD:-}" ]; then
  TESSERAD="$(swift build -c "$CONFIG" --show-bin-path 2>/dev/null)/tesserad"
fi
[ -x "$TESSERAD" ] || { echo "FAIL no tesserad at $TESSERAD (swift build, or --tesserad PATH)"; echo "failover: 0 passed, 1 failed"; exit 1; }
case "$rounds" in ''|*[!0-9]*) echo "FAIL --rounds wants a number, got '$rounds'"; echo "failover: 0 passed, 1 failed"; exit 1 ;; esac
# A round is at most about 30 s down, 60 s restart and 120 s convergence; a normal one is 10-20 s.
limit=$((300 + rounds * 240 + 400))  # and a --gone round: replace_after, the copies, a restart
timeout -k 10 "$limit" python3 Tools/cluster/fault-campaign.py --tesserad "$TESSERAD" "${args[@]}"
rc=$?
[ $rc -eq 124 ] && { echo "FAIL fault-campaign.py timed out after $limit s"; echo "failover: 0 passed, 1 failed"; }
exit $rc
