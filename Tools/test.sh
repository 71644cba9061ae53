#!/usr/bin/env bash
# The test command: unit tests, then real clients against real tesserad
# processes on loopback, then (when qemu can run) the kernel initiator in a guest.
# Installs what the tests need if missing. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
source Tools/env.sh
bash Tools/install-deps.sh --test || exit 1

status=0
stage() { echo; echo "=== $*"; }

stage "unit tests (swift test)"
if ! swift build --build-tests; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
swift test --skip-build 2>&1 | tee .build/unit-tests.log | grep -vE '^(Test Case|\[|◇|􀟈)' | tail -25
unit=${PIPESTATUS[0]}
[ "$unit" -ne 0 ] && status=1

stage "loopback: real clients against tesserad"
bash Tools/conformance/loopback.sh || status=1

if [ "${TESSERA_SKIP_VM:-0}" != "1" ] && [ -x Tools/vm/test-vm.sh ]; then
  stage "kernel initiator (open-iscsi, dm-multipath) in a qemu guest"
  TARGET=tesserad TESSERAD_BIN="$(swift build --show-bin-path)/tesserad" bash Tools/vm/test-vm.sh || status=1
fi

echo
if [ $status -eq 0 ]; then echo "all stages passed"; else echo "SOME STAGES FAILED"; fi
exit $status
