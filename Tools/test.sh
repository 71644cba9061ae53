#!/usr/bin/env bash
# The test command: unit tests; real clients against real tesserad processes
# on loopback; a three-node cluster with leader kills; and (when qemu can run)
# the kernel initiator in a guest.
# Installs what the tests need if missing. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source Tools/env.sh
bash Tools/install-deps.sh --test || exit 1

status=0
passed=0 failed=0
started=$(date +%s)
# stage TEXT: a header with the time into the run, so a slow stage shows in CI logs
stage() { echo; echo "=== $* ($(( $(date +%s) - started )) s into the run)"; }
# count LOG: adds the last "N passed, N failed" line of a stage's output to the totals
count() {
  local line
  line=$(grep -E '(^|: )[0-9]+ passed, [0-9]+ failed' "$1" | tail -1 | grep -oE '[0-9]+ passed, [0-9]+ failed')
  [ -n "$line" ] || { failed=$((failed + 1)); return; }
  passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
  failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
}

# One build for every stage: release (what Tools/run.sh deploys, and several
# times faster in the TCG guest than debug), with testable imports for the
# unit tests. Every stage takes its binaries from TESSERA_BIN_DIR.
BUILD=(-c release -Xswiftc -enable-testing)
stage "unit tests (swift test, release build)"
if ! swift build "${BUILD[@]}" --build-tests; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
TESSERA_BIN_DIR="$(swift build "${BUILD[@]}" --show-bin-path)"
export TESSERA_BIN_DIR
# Bounded: the suite takes under a minute, and a hung test must fail the stage,
# not use up CI's time (the log then ends at the test that hung).
timeout -k 10 600 swift test "${BUILD[@]}" --skip-build 2>&1 | tee .build/unit-tests.log | grep -E '✘|error:|Test run with|recorded an issue' | tail -40
unit=${PIPESTATUS[0]}
[ "$unit" -eq 124 ] && echo "unit tests: still running after 600 s; stopped (the last lines of .build/unit-tests.log name the test)"
[ "$unit" -ne 0 ] && status=1
n=$(grep -oE 'Test run with [0-9]+ tests' .build/unit-tests.log | tail -1 | grep -oE '[0-9]+')
if [ "$unit" -eq 0 ] && [ -n "$n" ]; then passed=$((passed + n)); else failed=$((failed + 1)); fi

stage "loopback: real clients against tesserad"
bash Tools/conformance/loopback.sh 2>&1 | tee .build/loopback.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/loopback.log

stage "hostile hosts: login timeout, connection bounds, write data bounded by the CDB, immediate commands, a host that never reads"
bash Tools/hostile/bounds.sh 2>&1 | tee .build/hostile-bounds.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/hostile-bounds.log

# The fuzz stage builds its own instrumented copy (CPU-bound, about three
# minutes) while the conformance stage mostly waits on its client (libiscsi's
# Sanitize tests alone sleep 90 s), so it runs beside it; its output comes
# under its own header when both have ended.
fuzz_start=$(( $(date +%s) - started ))
bash Tools/fuzz/run.sh --time 6 >.build/fuzz.log 2>&1 &
fuzz_pid=$!

stage "conformance: libiscsi iscsi-test-cu -t ALL, a read-only LUN, APTPL across kill -9"
bash Tools/conformance/iscsi-test-all.sh 2>&1 | tee .build/conformance-all.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/conformance-all.log

stage "fuzz: libFuzzer targets (PDU stream through login and session, negotiation, CDBs, dqlite wire, peer wire), 6 s each; started at ${fuzz_start} s beside the conformance stage"
wait "$fuzz_pid"
fuzz_rc=$?
cat .build/fuzz.log
[ "$fuzz_rc" -ne 0 ] && status=1
count .build/fuzz.log

stage "cluster: three tesserad processes on one replicated store, leader killed 20 times"
bash Tools/cluster/acceptance.sh --kills 20 2>&1 | tee .build/cluster.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/cluster.log

stage "cluster data path: the distributed LUN through every node's portal (data, identity, hostile peer, iscsi-test-cu)"
bash Tools/cluster/data-acceptance.sh 2>&1 | tee .build/cluster-data.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/cluster-data.log

stage "shared context: reservations, unit attentions and task management across three nodes (two initiators, libiscsi MultipathIO)"
bash Tools/cluster/context-acceptance.sh 2>&1 | tee .build/cluster-context.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/cluster-context.log

stage "admin API and tessera CLI: token, the same answers through every node, ACL and CHAP changes in force on every node's logins, a killed node seen through the fallback"
bash Tools/cluster/admin-acceptance.sh 2>&1 | tee .build/cluster-admin.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/cluster-admin.log

stage "failover: kill -9 and SIGSTOP of random nodes under a verifying writer through two portals"
bash Tools/cluster/fault-campaign.sh --rounds 10 --gone 2>&1 | tee .build/cluster-failover.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/cluster-failover.log

stage "soak: 64 sessions of verified mixed I/O through three nodes' portals while hosts log out and in; no errors, RSS flat, no fd leak"
bash Tools/soak/soak.sh --time 45 2>&1 | tee .build/soak.log
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
count .build/soak.log

if [ "${TESSERA_SKIP_VM:-0}" != "1" ] && [ -x Tools/vm/test-vm.sh ]; then
  stage "kernel initiator (open-iscsi, dm-multipath) in a qemu guest: one node, two portals, a three-node cluster, and kill -9 of each node in turn under fio with reservations held"
  TARGET=tesserad TESSERAD_BIN="$TESSERA_BIN_DIR/tesserad" bash Tools/vm/test-vm.sh 2>&1 | tee .build/vm.log
  [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
  grep -q 'vm: SKIPPED' .build/vm.log || count .build/vm.log
fi

echo
echo "test command: $(( $(date +%s) - started )) s"
if [ $status -eq 0 ]; then echo "all stages passed"; else echo "SOME STAGES FAILED"; fi
[ $status -ne 0 ] && [ $failed -eq 0 ] && failed=1
echo "tests: $passed passed, $failed failed"
exit $status
