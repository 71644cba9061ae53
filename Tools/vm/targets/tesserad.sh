# /vm/target.sh for TARGET=tesserad — Tessera's own daemon as the target.
# Same interface as targets/tgt.sh:
#   target_start <ip:port>...   one [[portal]] per argument (group 1, 2, ...),
#                               one [[target]] $IQN with CHAP and LUN 0 of
#                               $SIZE_MB MiB, file-backed on /tmp (tmpfs)
#   target_stop
# Knobs (set on the host when building the initramfs; they are baked into
# /vm/target.env by build-initramfs.sh):
#   TESSERAD_ARGS   command line; "{config}" is replaced by the TOML path
#                   (default: "--config {config}")
#   TARGET_CONFIG   a complete TOML file to use instead of the generated one
#                   (installed as /vm/target.conf)
#   EXPECT_VENDOR / EXPECT_PRODUCT / EXPECT_SERIAL / EXPECT_SIZE_BYTES
#                   what the scenarios expect in INQUIRY / capacity when they
#                   differ from VENDOR/PRODUCT/SERIAL/SIZE_MB
[ -n "${TESSERAD_ARGS:-}" ] || TESSERAD_ARGS='--config {config}'
export LD_LIBRARY_PATH=/opt/swift/usr/lib/swift/linux${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

tesserad_config() {
	local g=0 p groups=""
	printf '[node]\ndata_dir = "/tmp/tessera-data"\nlog_level = "%s"\n\n' "${TESSERAD_LOG_LEVEL:-info}"
	for p in "$@"; do
		g=$((g + 1))
		printf '[[portal]]\nlisten = "%s"\ngroup = %d\n\n' "$p" "$g"
		groups="${groups:+$groups, }$g"
	done
	cat <<TOML
[[target]]
name = "$IQN"
portal_groups = [$groups]

[target.chap]
user = "$CHAP_USER"
secret = "$CHAP_SECRET"

[[target.lun]]
id = 0
size = "${SIZE_MB}MiB"
backing = "file"
path = "/tmp/lun0.img"
vendor = "$VENDOR"
product = "$PRODUCT"
revision = "0001"
serial = "$SERIAL"
TOML
}

# listening <port> <count>: <count> sockets in LISTEN on <port> (/proc/net/tcp)
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	[ "$(grep -c ":$hex [0-9A-F:]* 0A " /proc/net/tcp)" -ge "$2" ]
}
# ready_or_gone <port> <count>: listening, or the daemon has exited
ready_or_gone() { listening "$1" "$2" || ! kill -0 "$TARGET_PID" 2>/dev/null; }

target_start() {
	local conf=/tmp/tesserad.toml args
	mkdir -p /tmp/tessera-data
	truncate -s "${SIZE_MB}M" /tmp/lun0.img || return 1
	if [ -f /vm/target.conf ]; then
		cp /vm/target.conf "$conf"
	else
		tesserad_config "$@" > "$conf"
	fi
	sed 's/^/  toml| /' "$conf"
	tesserad --config "$conf" --check-config 2>&1 | sed 's/^/  check-config| /'
	args=$(echo "$TESSERAD_ARGS" | sed "s|{config}|$conf|g")
	# TESSERAD_ARGS is split on blanks (no quoting)
	# shellcheck disable=SC2086
	tesserad $args >/tmp/target.log 2>&1 &
	TARGET_PID=$!
	wait_until 30 ready_or_gone "$PORT" "$#"
	if ! listening "$PORT" "$#"; then
		echo "tesserad is not listening on $* (args: $args)"
		kill -0 "$TARGET_PID" 2>/dev/null || echo "tesserad exited"
		return 1
	fi
}

target_stop() {
	[ -n "${TARGET_PID:-}" ] || return 0
	kill "$TARGET_PID" 2>/dev/null
	wait_until 10 sh -c "! kill -0 $TARGET_PID" || kill -9 "$TARGET_PID" 2>/dev/null
	wait "$TARGET_PID" 2>/dev/null
	TARGET_PID=
}
