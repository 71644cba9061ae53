#!/bin/bash
# Tools/vm/test-vm.sh — kernel-initiator end-to-end tests in a qemu guest.
#
# setup (if needed) -> build initramfs -> scenarios single + multipath
# (+ cluster and failover with TARGET=tesserad).
# Prints "PASS <scenario>" / "FAIL <scenario>" per scenario and a closing
# "vm: N passed, N failed" line; exits non-zero if any failed.
# If qemu cannot be installed: prints SKIPPED and exits 0.
#
# Environment: TARGET=tgt (default) | tesserad (+ TESSERAD_BIN=/path),
# SCENARIOS="single multipath" (tesserad: "single multipath cluster
# failover"), VM_TIMEOUT (per scenario, default 240), VM_TIMEOUT_CLUSTER
# (default 600), VM_TIMEOUT_FAILOVER (default 1200). "failover" (tesserad
# only: kill -9 of three nodes in turn under fio, resync, a persistent and an
# SPC-2 reservation across the kills) takes about 4.5 minutes under TCG (release tesserad); one
# scenario alone: SCENARIOS=failover TARGET=tesserad Tools/vm/test-vm.sh
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET="${TARGET:-tgt}"; export TARGET
# "cluster" (three tesserad nodes, one distributed LUN) needs tesserad: tgt cannot do it
if [ "$TARGET" = tesserad ]; then SCENARIOS="${SCENARIOS:-single multipath cluster failover}"
else SCENARIOS="${SCENARIOS:-single multipath}"; fi
T0=$(date +%s)

"$HERE/setup.sh"
rc=$?
if [ "$rc" = 2 ]; then
	echo "vm: SKIPPED (qemu-system-x86_64 or a guest package could not be installed)"
	exit 0
elif [ "$rc" != 0 ]; then
	echo "vm: setup failed (exit $rc)"; exit 1
fi
"$HERE/build-initramfs.sh" || { echo "vm: initramfs build failed"; exit 1; }

pass=0; failn=0; summary=()
for s in $SCENARIOS; do
	t=$(date +%s)
	limit="${VM_TIMEOUT:-240}"
	# three daemons forming a store under TCG, the ALUA and reservation checks,
	# fio through paths that the shipped 2 s NOP-Out timeout may drop and re-login
	[ "$s" = cluster ] && limit="${VM_TIMEOUT_CLUSTER:-600}"
	# three kill -9 rounds (two under fio), each with a failover after a
	# lease lapse, two restarts and resyncs
	[ "$s" = failover ] && limit="${VM_TIMEOUT_FAILOVER:-1200}"
	if "$HERE/run.sh" "$HERE/scenarios/$s.sh" "$limit"; then
		pass=$((pass + 1)); summary+=("PASS $s ($(( $(date +%s) - t ))s, target $TARGET)")
	else
		failn=$((failn + 1)); summary+=("FAIL $s ($(( $(date +%s) - t ))s, target $TARGET)")
	fi
done
echo "================ vm results (target $TARGET, $(( $(date +%s) - T0 ))s total)"
printf '%s\n' "${summary[@]}"
echo "vm: $pass passed, $failn failed"
[ "$failn" = 0 ]
