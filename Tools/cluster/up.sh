#!/usr/bin/env bash
# Starts a local three-node Tessera cluster on loopback and creates one
# distributed LUN through the CLI (no target in any node's TOML), then prints
# the iscsiadm lines that use it. Tools/cluster/down.sh stops it.
#
# Usage: Tools/cluster/up.sh [--dir DIR] [--size 1G]
#   Ports: iSCSI 127.0.0.1:3261-3263, store 9001-9003, wire 9101-9103,
#   admin 8081-8083 (Targets/cluster-node{1,2,3}.toml). Data under DIR
#   (default ./tessera-cluster). TESSERAD / TESSERA name prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$PWD/tessera-cluster SIZE=1G
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$(realpath -m "$2"); shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    *) echo "usage: $0 [--dir DIR] [--size 1G]" >&2; exit 2 ;;
  esac
done
if [ -z "${TESSERAD:-}" ] || [ -z "${TESSERA:-}" ]; then
  source Tools/env.sh
  swift build --product tesserad >/dev/null && swift build --product tessera >/dev/null
  TESSERAD=${TESSERAD:-$PWD/.build/debug/tesserad} TESSERA=${TESSERA:-$PWD/.build/debug/tessera}
fi
for i in 1 2 3; do
  if [ -f "$DIR/node$i.pid" ] && kill -0 "$(cat "$DIR/node$i.pid")" 2>/dev/null; then
    echo "node $i already runs (pid $(cat "$DIR/node$i.pid")); Tools/cluster/down.sh --dir $DIR first" >&2
    exit 1
  fi
done
mkdir -p "$DIR"
[ -f "$DIR/cluster.secret" ] || "$TESSERAD" --new-cluster-secret "$DIR/cluster.secret" >/dev/null
for i in 1 2 3; do
  # The shipped layout, without its [[target]]: the CLI makes the target below.
  sed -e '/^\[\[target\]\]/,$d' -e "s#\./tessera-data/node$i#$DIR/node$i#" \
    -e "s#\./tessera-data/cluster.secret#$DIR/cluster.secret#" "Targets/cluster-node$i.toml" > "$DIR/node$i.toml"
  "$TESSERAD" --config "$DIR/node$i.toml" > "$DIR/node$i.log" 2>&1 &
  echo $! > "$DIR/node$i.pid"
done
export TESSERA_NODE=127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083
for _ in $(seq 120); do
  ready=0
  for i in 1 2 3; do grep -q "tesserad ready" "$DIR/node$i.log" && ready=$((ready + 1)); done
  [ $ready = 3 ] && break
  sleep 0.5
done
if [ $ready != 3 ]; then
  echo "the cluster did not come up within 60 s; logs: $DIR/node{1,2,3}.log" >&2
  exit 1
fi
IQN=iqn.2026-12.dev.tessera:local
if ! "$TESSERA" target list --json | grep -q "\"$IQN\""; then
  "$TESSERA" target create "$IQN" --alias tessera-local >/dev/null
  "$TESSERA" lun create "$IQN" "$SIZE" --replicas 2 --sub-unit-size 64M >/dev/null
fi
sleep 2
"$TESSERA" cluster status
echo
"$TESSERA" lun list
cat <<EOT

Use it from this host (open-iscsi; multipath with Tools/host/multipath-tessera.conf):
  iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3261
  iscsiadm -m node -T $IQN --login
Manage it: export TESSERA_NODE=$TESSERA_NODE; $TESSERA --help
Stop it:   Tools/cluster/down.sh${DIR:+ --dir $DIR}
EOT
