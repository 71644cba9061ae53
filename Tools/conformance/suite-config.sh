# Sourced by iscsi-test-all.sh and compare-with-tgt.sh, so the comparison with
# tgt runs tesserad exactly as the conformance stage does.
#
# suite_config FILE DATA_DIR PORT TARGET: a tesserad configuration with two
# portals (PORT, PORT+1: MultipathIO needs a second path) and TARGET's LUN 0
# of 256 MiB in DATA_DIR/suite.img. Callers append targets of their own.
suite_config() {
  cat > "$1" <<TOML
[node]
data_dir = "$2"
log_level = "warning"
[iscsi]
# libiscsi's Sanitize.Reset sleeps 60 s between commands without servicing its
# socket: NOP-In pings must not drop the connection in that time.
nop_in_interval = 30
nop_in_timeout = 120
[[portal]]
listen = "127.0.0.1:$3"
group = 1
[[portal]]
listen = "127.0.0.1:$(($3 + 1))"
group = 2
[[target]]
name = "$4"
[[target.lun]]
id = 0
size = "256MiB"
block_size = 512
backing = "file"
path = "suite.img"
thin = true
serial = "TSR-SUITE-0"
TOML
}
