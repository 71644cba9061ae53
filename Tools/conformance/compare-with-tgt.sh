#!/usr/bin/env bash
# Runs the whole `iscsi-test-cu -t ALL` against Debian's tgt and tesserad in
# one go (same backing size, same flags: --dataloss --allow-sanitize, two
# initiator names, suites bounded by timeout) and prints passed/failed/skipped
# per suite side by side. A comparison: it reports, it does not judge.
# Usage: Tools/conformance/compare-with-tgt.sh [--suite S ...]
# Ports: tesserad 3302-3303, tgt 3304 (control port 23).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
command -v tgtd >/dev/null && command -v iscsi-test-cu >/dev/null || {
  echo "needs tgtd (tgt) and iscsi-test-cu (libiscsi-bin): bash Tools/install-deps.sh --test" >&2; exit 2; }
WORK=$PWD/.build/compare-tgt
rm -rf "$WORK"; mkdir -p "$WORK"
PORT_T=3302 PORT_T2=3303 PORT_G=3304 CTRL=23
BIN=$(swift build --show-bin-path)/tesserad
[ -x "$BIN" ] || swift build --product tesserad >/dev/null
T=iqn.2026-11.dev.tessera:compare
source Tools/conformance/suite-config.sh
suite_config "$WORK/tesserad.toml" "$WORK" "$PORT_T" "$T"
source Tools/lib/tgt.sh
trap 'tgt_stop; stop_pid "$TPID"' EXIT
"$BIN" --config "$WORK/tesserad.toml" >"$WORK/tesserad.log" 2>&1 &
TPID=$!
truncate -s 256M "$WORK/tgt.img"
tgt_start "$PORT_G" "$CTRL" "$WORK/tgt.img" "$WORK/tgtd.log"
T_URL=iscsi://127.0.0.1:$PORT_T/$T/0
for _ in $(seq 100); do iscsi-inq "$T_URL" >/dev/null 2>&1 && break; sleep 0.2; done
G_URL=iscsi://127.0.0.1:$PORT_G/iqn.2026-11.dev.tessera:tgt/1

run() { # run LABEL URL MULTIPATH-URL
  python3 Tools/conformance/iscsi_test_cu.py --url "$2" --multipath-url "$3" --first MultipathIO \
    --expected Tools/conformance/expected-all.txt --label "$1" --log "$WORK/$1.log" \
    --per-suite "$WORK/$1.json" --timeout 600 "${EXTRA[@]}" | tail -2
}
EXTRA=("$@")
run tgt "$G_URL" "$G_URL"
run tesserad "$T_URL" "iscsi://127.0.0.1:$PORT_T2/$T/0"
python3 - "$WORK/tgt.json" "$WORK/tesserad.json" <<'PY'
import json, sys
tgt, tes = (json.load(open(p)) for p in sys.argv[1:3])
print(f"{'suite':26} {'tgt pass/fail/skip/err':>24} {'tesserad pass/fail/skip/err':>28}")
tot = {"tgt": [0] * 4, "tesserad": [0] * 4}
for suite in sorted(set(tgt) | set(tes)):
    row = []
    for name, d in (("tgt", tgt), ("tesserad", tes)):
        c = d.get(suite, {})
        v = [c.get(k, 0) for k in ("PASS", "FAIL", "SKIP", "ERROR")]
        tot[name] = [a + b for a, b in zip(tot[name], v)]
        row.append("/".join(map(str, v)))
    print(f"{suite:26} {row[0]:>24} {row[1]:>28}")
print(f"{'TOTAL':26} {'/'.join(map(str, tot['tgt'])):>24} {'/'.join(map(str, tot['tesserad'])):>28}")
PY
