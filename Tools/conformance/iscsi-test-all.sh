#!/usr/bin/env bash
# Conformance: the whole `iscsi-test-cu -t ALL` against a real tesserad.
#   - every suite, with --dataloss and --allow-sanitize, two initiator names
#     (-i/-I) and a second portal for MultipathIO, each suite bounded by timeout;
#     judged against Tools/conformance/expected-all.txt (fails on any test that
#     does worse than listed there);
#   - the ReadOnly suite against a read_only = true LUN (expected-readonly.txt);
#   - implicit ALUA: INQUIRY TPGS, REPORT TARGET PORT GROUPS (Tools/conformance/alua_check.py);
#   - APTPL: register + reserve with APTPL, kill -9, restart, same keys/holder/type.
# Usage: Tools/conformance/iscsi-test-all.sh [--suite S ...]   (extra args go to the runner)
# Ports 3300-3301 (override with TESSERA_CONF_PORT). Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f Tools/env.sh ] && source Tools/env.sh
PORT=${TESSERA_CONF_PORT:-3300}
PORT2=$((PORT + 1))
WORK=$PWD/.build/conformance-all
rm -rf "$WORK"; mkdir -p "$WORK"
BIN=${TESSERA_BIN_DIR:-$(swift build --show-bin-path)}/tesserad
[ -x "$BIN" ] || swift build --product tesserad >/dev/null
T=iqn.2026-11.dev.tessera:all
RO=iqn.2026-11.dev.tessera:readonly
source Tools/conformance/suite-config.sh
suite_config "$WORK/tesserad.toml" "$WORK" "$PORT" "$T"
cat >> "$WORK/tesserad.toml" <<TOML
[[target]]
name = "$RO"
[[target.lun]]
id = 0
size = "16MiB"
backing = "file"
path = "readonly.img"
read_only = true
serial = "TSR-RO-0"
TOML

truncate -s 16M "$WORK/readonly.img"  # a read-only LUN opens an existing file
PID=
start() {
  "$BIN" --config "$WORK/tesserad.toml" >>"$WORK/tesserad.log" 2>&1 &
  PID=$!
  for _ in $(seq 150); do iscsi-inq "iscsi://127.0.0.1:$PORT/$T/0" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null' EXIT
pass=0 fail=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@" >>"$WORK/checks.log" 2>&1; then echo "PASS $name"; pass=$((pass + 1))
  else echo "FAIL $name (see $WORK/checks.log)"; fail=$((fail + 1)); fi
}

start || { echo "FAIL tesserad did not start (see $WORK/tesserad.log)"; echo "0 passed, 1 failed"; exit 1; }
URL=iscsi://127.0.0.1:$PORT/$T/0
URL2=iscsi://127.0.0.1:$PORT2/$T/0
check "iscsi-test-cu -t ALL (expected-all.txt)" python3 Tools/conformance/iscsi_test_cu.py --url "$URL" \
  --multipath-url "$URL2" --first MultipathIO --expected Tools/conformance/expected-all.txt --label all \
  --timeout 600 --log "$WORK/iscsi-test-cu.log" --per-suite "$WORK/per-suite.json" "$@"
check "iscsi-test-cu ReadOnly against a read-only LUN" python3 Tools/conformance/iscsi_test_cu.py \
  --url "iscsi://127.0.0.1:$PORT/$RO/0" --expected Tools/conformance/expected-readonly.txt --label readonly \
  --log "$WORK/iscsi-test-cu-readonly.log"
# Implicit ALUA (SPC-4 §5.16, §6.37): libiscsi 1.19 has no RTPG tests; alua_check.py makes
# the checks of libiscsi's later Rtpg.Simple/AllocLength and ours through both portals.
check "ALUA: TPGS 01b, REPORT TARGET PORT GROUPS through both portals, no SET TARGET PORT GROUPS" \
  python3 Tools/conformance/alua_check.py "$T" "127.0.0.1:$PORT:1" "127.0.0.1:$PORT2:2"

# APTPL (SPC-4 §5.13.5): the state survives kill -9.
PR="python3 Tools/conformance/pr_client.py 127.0.0.1:$PORT $T"
check "APTPL: register with APTPL" $PR register 0xabc123 --aptpl
check "APTPL: reserve Exclusive Access" $PR reserve 0xabc123 3
$PR read-keys > "$WORK/keys-before" 2>&1
$PR read-reservation > "$WORK/reservation-before" 2>&1
kill -9 $PID; wait $PID 2>/dev/null
start || echo "tesserad did not restart" >>"$WORK/checks.log"
$PR read-keys > "$WORK/keys-after" 2>&1
$PR read-reservation > "$WORK/reservation-after" 2>&1
check "APTPL: READ KEYS after kill -9 (keys $(cat "$WORK/keys-before"))" \
  bash -c "grep -q 0xabc123 '$WORK/keys-after' && diff '$WORK/keys-before' '$WORK/keys-after'"
check "APTPL: READ RESERVATION after kill -9 ($(cat "$WORK/reservation-before"))" \
  bash -c "grep -q 'type=3' '$WORK/reservation-after' && diff '$WORK/reservation-before' '$WORK/reservation-after'"
check "tesserad still running" kill -0 $PID
grep -E '^(all|readonly): [0-9]+ tests|slowest suites' "$WORK/checks.log"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
