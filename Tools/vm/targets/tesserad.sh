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

# --- a cluster of tesserad nodes in the guest (scenario "cluster") -----------
#   cluster_start N   N tesserad processes from /vm/cluster/cluster-node{1..N}.toml
#                     (the repository's Targets/cluster-node*.toml, baked in by
#                     build-initramfs.sh), node i moved onto its own loopback
#                     address: portal 127.0.0.i:$PORT, store 127.0.0.i:900i,
#                     wire 127.0.0.i:910i, admin 127.0.0.i:808i, data under
#                     /tmp/cluster/node<i>; the LUN resized to $CLUSTER_SIZE_MB MiB
#                     and given $VENDOR/$PRODUCT/$SERIAL, the lease set to
#                     $CLUSTER_LEASE (10s). Node 1 starts first;
#                     returns once every node logged "tesserad ready".
#                     Sets CLUSTER_IQN (the target in node 1's TOML) and CLUSTER_PIDS.
#   cluster_stop      SIGTERM to every node, SIGKILL after 10 s.
#   cluster_pid I     node I's PID (from CLUSTER_PIDS).
#   cluster_restart I node I started again with its TOML and data (after a kill);
#                     its log is appended to; returns once it logged "tesserad
#                     ready" once more (150 s at most).
# Logs: /tmp/target-node<i>.log (node 1's also as /tmp/target.log).
: "${CLUSTER_SIZE_MB:=256}"
# the store lease in the guest: under TCG every instruction is emulated and
# the three nodes share two emulated CPUs, so a store round trip can take
# longer than the TOMLs' 2 s and a 2 s lease lapses every few seconds (each
# lapse makes that node's port group unavailable)
: "${CLUSTER_LEASE:=10s}"
CLUSTER_PIDS=""

# cluster_toml <i>: node i's TOML on stdin -> the guest's version on stdout
cluster_toml() {
	sed -e 's#127\.0\.0\.1:326\([0-9]\)#127.0.0.\1:'"$PORT"'#g' \
	    -e 's#127\.0\.0\.1:900\([0-9]\)#127.0.0.\1:900\1#g' \
	    -e 's#127\.0\.0\.1:910\([0-9]\)#127.0.0.\1:910\1#g' \
	    -e 's#127\.0\.0\.1:808\([0-9]\)#127.0.0.\1:808\1#g' \
	    -e 's#^data_dir = .*#data_dir = "/tmp/cluster/node'"$1"'"#' \
	    -e 's#^log_level = .*#log_level = "'"${TESSERAD_LOG_LEVEL:-info}"'"#' \
	    -e 's#^size = .*#size = "'"$CLUSTER_SIZE_MB"'MiB"#' \
	    -e 's#^lease = .*#lease = "'"$CLUSTER_LEASE"'"#'
	# node 1's file ends inside its [[target.lun]]: these keys belong to that LUN
	if grep -q '^\[\[target\.lun\]\]' "/vm/cluster/cluster-node$1.toml"; then
		printf 'vendor = "%s"\nproduct = "%s"\nserial = "%s"\n' "$VENDOR" "$PRODUCT" "$SERIAL"
	fi
}

cluster_ready() { # cluster_ready N: every node logged "tesserad ready", or one has exited
	local i=1 pid
	for pid in $CLUSTER_PIDS; do
		kill -0 "$pid" 2>/dev/null || return 0
		grep -q 'tesserad ready' "/tmp/target-node$i.log" 2>/dev/null || return 1
		i=$((i + 1))
	done
	return 0
}

cluster_start() {
	local n="$1" i conf pid tries
	[ -f /vm/cluster/cluster-node1.toml ] || { echo "no /vm/cluster/cluster-node1.toml in the initramfs"; return 1; }
	CLUSTER_IQN=$(sed -n 's/^name = "\(.*\)"/\1/p' /vm/cluster/cluster-node1.toml | head -n1)
	i=1
	while [ "$i" -le "$n" ]; do
		conf=/tmp/cluster-node$i.toml
		mkdir -p "/tmp/cluster/node$i"
		cluster_toml "$i" < "/vm/cluster/cluster-node$i.toml" > "$conf"
		grep -v '^ *#' "$conf" | grep -v '^ *$' | sed "s/^/  node$i toml| /"
		tesserad --config "$conf" --check-config 2>&1 | sed "s/^/  node$i check-config| /"
		i=$((i + 1))
	done
	# one cluster secret for every node (the TOMLs' secret_file, relative to /tmp/cluster)
	mkdir -p /tmp/cluster/tessera-data
	[ -f /tmp/cluster/tessera-data/cluster.secret ] ||
		tesserad --new-cluster-secret /tmp/cluster/tessera-data/cluster.secret | sed 's/^/  /'
	i=1
	while [ "$i" -le "$n" ]; do
		(cd /tmp/cluster && exec tesserad --config "/tmp/cluster-node$i.toml") >"/tmp/target-node$i.log" 2>&1 &
		pid=$!
		CLUSTER_PIDS="${CLUSTER_PIDS:+$CLUSTER_PIDS }$pid"
		[ "$i" = 1 ] && { ln -sf /tmp/target-node1.log /tmp/target.log; TARGET_PID=$pid; sleep 2; }
		# one join at a time: under TCG two nodes joining the store at once
		# left nodes 1 and 2 without a leader (a daemon bug)
		[ "$i" -gt 1 ] && [ "$i" -lt "$n" ] &&
			wait_until 60 sh -c "grep -q 'store joined' /tmp/target-node$i.log || ! kill -0 $pid"
		i=$((i + 1))
	done
	# under TCG the store's formation takes a while; each node waits for all members
	wait_until 150 cluster_ready
	# a daemon bug, seen in the guest: a joining node's ASSIGN can fail with
	# "store join: store SQL error 1: server role is not valid" and the node
	# exits; its join is idempotent, so start it again (twice at most)
	i=1
	for pid in $CLUSTER_PIDS; do
		tries=0
		while ! kill -0 "$(cluster_pid "$i")" 2>/dev/null && [ "$tries" -lt 2 ] &&
		      tail -n 3 "/tmp/target-node$i.log" | grep -q 'server role is not valid'; do
			tries=$((tries + 1))
			echo "  note: node $i exited with 'server role is not valid' (daemon bug): starting it again ($tries)"
			cluster_restart "$i" >/dev/null 2>&1
		done
		i=$((i + 1))
	done
	wait_until 150 cluster_ready
	i=1
	for pid in $CLUSTER_PIDS; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "node $i (pid $pid) exited:"; tail -n 15 "/tmp/target-node$i.log"; return 1
		fi
		if ! grep -q 'tesserad ready' "/tmp/target-node$i.log"; then
			echo "node $i is not ready after 150 s:"; tail -n 15 "/tmp/target-node$i.log"; return 1
		fi
		i=$((i + 1))
	done
}

cluster_gone() {
	local pid
	for pid in $CLUSTER_PIDS; do kill -0 "$pid" 2>/dev/null && return 1; done
	return 0
}

cluster_stop() {
	local pid
	for pid in $CLUSTER_PIDS; do kill "$pid" 2>/dev/null; done
	wait_until 10 cluster_gone
	for pid in $CLUSTER_PIDS; do
		kill -0 "$pid" 2>/dev/null && { echo "  node pid $pid ignored SIGTERM for 10 s: SIGKILL"; kill -9 "$pid"; }
		wait "$pid" 2>/dev/null
	done
	CLUSTER_PIDS=""
	TARGET_PID=
}

cluster_pid() { echo "$CLUSTER_PIDS" | tr ' ' '\n' | sed -n "${1}p"; }

cluster_restart() {
	local i="$1" before pid old new="" j=1
	old=$(cluster_pid "$i")
	[ -n "$old" ] && wait "$old" 2>/dev/null
	before=$(grep -c 'tesserad ready' "/tmp/target-node$i.log")
	echo "----- restart $(cut -d' ' -f1 /proc/uptime)s" >>"/tmp/target-node$i.log"
	(cd /tmp/cluster && exec tesserad --config "/tmp/cluster-node$i.toml") >>"/tmp/target-node$i.log" 2>&1 &
	pid=$!
	for old in $CLUSTER_PIDS; do
		[ "$j" = "$i" ] && old=$pid
		new="${new:+$new }$old"; j=$((j + 1))
	done
	CLUSTER_PIDS=$new
	[ "$i" = 1 ] && TARGET_PID=$pid
	wait_until 150 sh -c "! kill -0 $pid || [ \$(grep -c 'tesserad ready' /tmp/target-node$i.log) -gt $before ]"
	kill -0 "$pid" 2>/dev/null && [ "$(grep -c 'tesserad ready' "/tmp/target-node$i.log")" -gt "$before" ]
}
