#!/usr/bin/env bash
# Failover benchmark: the fault campaign (Tools/cluster/fault-campaign.py) with
# kill -9 only, 20 rounds by default, under the verifying writer through two
# portals. Prints the host-visible pause per kill (the longest wait for an
# acknowledged write from the kill until the cluster converged again) and
# p50/p99/max, and whether p99 meets the goal (5 s). The goal is reported,
# not enforced: the exit status is the campaign's (data lost, a round that
# did not converge, ...).
# Usage: Tools/bench/failover.sh [--rounds 20] [--seed S] [--base-port 3360] [--tesserad PATH] [campaign options]
#   Builds nothing: --tesserad PATH, else $TESSERAD, else $(swift build --show-bin-path)/tesserad.
set -uo pipefail
cd "$(dirname "$0")/../.."
GOAL_MS="${GOAL_MS:-5000}"
args=()
have_rounds=0
for a in "$@"; do case "$a" in --rounds|--rounds=*) have_rounds=1 ;; esac; done
[ $have_rounds -eq 1 ] || args+=(--rounds 20)
out="$(mktemp /tmp/tessera-failover-bench.XXXXXX.json)"
trap 'rm -f "$out"' EXIT
bash Tools/cluster/fault-campaign.sh --kill-only "${args[@]}" "$@" --json "$out"
rc=$?
echo
echo "=== failover benchmark (kill -9, host-visible pause per kill)"
python3 - "$out" "$GOAL_MS" <<'PY'
import json, math, sys
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("no measurements (the campaign ended before its first round)")
    sys.exit(0)
goal = float(sys.argv[2])
rounds = [r for r in doc["rounds"] if r.get("pause_ms") is not None]
for r in rounds:
    first = "-" if r["first_ack_ms"] is None else f"{r['first_ack_ms']} ms"
    writable = "never" if r["writable_after_s"] is None else f"{r['writable_after_s']} s"
    print(f"kill {r['round']:>2}: node {r['node']}  pause {r['pause_ms']:>6} ms  first ack {first:>8}  "
          f"all sub-units writable after {writable:>7}  resync {r['resync_s']} s, {r['resync_bytes']} bytes"
          + ("" if r["converged"] else "  (did not converge)"))
if not rounds:
    print("no kills measured")
    sys.exit(0)
pauses = sorted(r["pause_ms"] for r in rounds)
rank = lambda p: pauses[max(0, math.ceil(p / 100 * len(pauses)) - 1)]
p50, p99, top = rank(50), rank(99), pauses[-1]
print(f"pause over {len(pauses)} kills (seed {doc['seed']}): p50 {p50} ms, p99 {p99} ms, max {top} ms")
print(f"goal p99 <= {goal / 1000:g} s: {'met' if p99 <= goal else 'NOT met'}")
PY
exit $rc
