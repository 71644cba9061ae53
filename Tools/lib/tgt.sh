# Sourced by the scripts that run Debian's tgt beside tesserad (the benchmark
# and the conformance comparison): one place that starts and stops it.

# stop_pid PID: SIGTERM, then SIGKILL after 5 s (tgtd ignores SIGTERM while it has targets).
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 25); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# tgt_start PORT CONTROL_PORT IMAGE LOG [tgtadm --bsoflags value]
# Starts tgtd on 127.0.0.1:PORT with target iqn.2026-11.dev.tessera:tgt, LUN 1 =
# IMAGE, open to every initiator; sets TGT_PID and TGT_CTRL.
tgt_start() {
  local port=$1 ctrl=$2 image=$3 log=$4 flags=()
  [ -n "${5:-}" ] && flags=(--bsoflags "$5")
  TGT_CTRL=$ctrl
  tgtd -f --iscsi portal=127.0.0.1:$port --control-port "$ctrl" >"$log" 2>&1 &
  TGT_PID=$!
  for _ in $(seq 50); do tgtadm -C "$ctrl" --op show --mode target >/dev/null 2>&1 && break; sleep 0.1; done
  tgtadm -C "$ctrl" --lld iscsi --mode target --op new --tid 1 --targetname iqn.2026-11.dev.tessera:tgt
  tgtadm -C "$ctrl" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$image" "${flags[@]}"
  tgtadm -C "$ctrl" --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL
}

# tgt_stop: deletes the target and stops tgtd.
tgt_stop() {
  [ -n "${TGT_PID:-}" ] || return 0
  tgtadm -C "$TGT_CTRL" --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
  stop_pid "$TGT_PID"
  TGT_PID=
}
