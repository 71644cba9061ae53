#!/usr/bin/env bash
# Builds the libFuzzer targets (once, with -sanitize=fuzzer,address) and runs
# each for a time or a number of executions over its seed corpus.
#   bash Tools/fuzz/run.sh [--release] [--time SECONDS] [--runs N] [target...]
# A debug build (the default) builds faster, a release build (--release)
# runs about ten times as many executions a second: the test stage uses the
# first, long runs the second.
# Targets: iscsi-pdu login scsi dqlite-wire peer-wire (default: all), each
# the executable fuzz-<target> of Tools/fuzz/Package.swift. Seeds are read
# from Tools/fuzz/corpus/<target>/ (committed); what a run adds goes to
# .build/fuzz-corpus/<target>/, crash inputs to Tools/fuzz/crashes/<target>/. Prints one line per target
#   fuzz <target>: N executions in S s, M crashes
# and at the end "N passed, M failed" (a crash or a build failure fails).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source Tools/env.sh

TIME=60 RUNS="" CONFIG=debug TARGETS=()
ALL=(iscsi-pdu login scsi dqlite-wire peer-wire)
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --release) CONFIG=release; shift ;;
    -h|--help) sed -n 2,13p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown target $t (one of: ${ALL[*]})" >&2; exit 2; }
done

SCRATCH=$ROOT/.build/fuzz
[ $CONFIG = debug ] && SCRATCH=$ROOT/.build/fuzz-debug
echo "building the fuzz targets ($CONFIG, -sanitize=fuzzer,address)"
start=$(date +%s)
# No index store and line tables only: a tenth less compile time, and crash reports keep their lines.
if ! (cd Tools/fuzz && swift build -c $CONFIG --scratch-path "$SCRATCH" --disable-index-store \
      -Xswiftc -sanitize=fuzzer,address -Xswiftc -gline-tables-only >"$ROOT/.build/fuzz-build.log" 2>&1); then
  grep -E 'error' "$ROOT/.build/fuzz-build.log" | head -20
  for t in "${TARGETS[@]}"; do echo "fuzz $t: build failed"; done
  echo "0 passed, ${#TARGETS[@]} failed"
  exit 1
fi
echo "built in $(( $(date +%s) - start )) s"
BIN=$SCRATCH/$CONFIG

passed=0 failed=0
for t in "${TARGETS[@]}"; do
  work=$ROOT/.build/fuzz-corpus/$t crashes=$ROOT/Tools/fuzz/crashes/$t
  mkdir -p "$work" "$crashes"
  before=$(find "$crashes" -type f | wc -l)
  limit=(-max_total_time="$TIME")
  [ -n "$RUNS" ] && limit=(-runs="$RUNS")
  log=$ROOT/.build/fuzz-$t.log
  # Leak checking is off: the SCSI target's background tasks (SANITIZE) outlive an input
  # by design. Swift's backtracer is off: libFuzzer's own report names the input.
  t0=$(date +%s)
  ASAN_OPTIONS=detect_leaks=0:${ASAN_OPTIONS:-} SWIFT_BACKTRACE=enable=no "$BIN/fuzz-$t" "${limit[@]}" -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "Tools/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  new=$(( $(find "$crashes" -type f | wc -l) - before ))
  echo "fuzz $t: ${runs:-0} executions in $secs s, $new crashes"
  if [ $rc -eq 0 ] && [ $new -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    grep -E 'ERROR|Fatal error|SUMMARY|artifact_prefix|Test unit written' "$log" | head -8
  fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
