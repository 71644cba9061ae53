#!/usr/bin/env bash
# Stops the cluster Tools/cluster/up.sh started (SIGTERM to the PIDs it
# recorded, then SIGKILL after 10 s). --purge also removes its data.
# Usage: Tools/cluster/down.sh [--dir DIR] [--purge]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$PWD/tessera-cluster PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$(realpath -m "$2"); shift 2 ;;
    --purge) PURGE=1; shift ;;
    *) echo "usage: $0 [--dir DIR] [--purge]" >&2; exit 2 ;;
  esac
done
for i in 1 2 3; do
  pidfile=$DIR/node$i.pid
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped node $i (pid $pid)"
  fi
  rm -f "$pidfile"
done
if [ $PURGE = 1 ]; then rm -rf "$DIR"; echo "removed $DIR"; fi
