# Sourced by the benches that compare builds on one memory LUN
# (cpu-per-request.sh, runtime-events.sh).
#   memory_lun WORK PORT NAME   writes WORK/tesserad.toml (a 256 MiB memory LUN
#                               served on 127.0.0.1:PORT as target NAME) and
#                               sets URL to its LUN 0
#   serve BIN                   starts BIN on that config (PID), waits until
#                               the LUN answers, and sends 200 requests that
#                               do not count (the login and warm-up)
#   stop_serving                stops it
memory_lun() {
  MEMORY_LUN_WORK=$1
  cat > "$1/tesserad.toml" <<TOML
[node]
data_dir = "$1"
log_level = "warning"
[[portal]]
listen = "127.0.0.1:$2"
group = 1
[[target]]
name = "$3"
[[target.lun]]
id = 0
size = "256MiB"
block_size = 512
backing = "memory"
TOML
  URL="iscsi://127.0.0.1:$2/$3/0"
}

# serve BIN DEPTH BYTES [-w]: the warm-up uses the workload's own shape
serve() {
  local bin=$1 depth=$2 bytes=$3 write=${4:-}
  rm -rf "$MEMORY_LUN_WORK/store"
  "$bin" --config "$MEMORY_LUN_WORK/tesserad.toml" > "$MEMORY_LUN_WORK/tesserad.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do iscsi-inq "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
  qemu-img bench -f raw $write -c 200 -d "$depth" -s "$bytes" "$URL" >/dev/null
}

stop_serving() {
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}
