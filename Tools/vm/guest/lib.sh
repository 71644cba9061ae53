# /vm/lib.sh — helpers shared by the guest scenarios (busybox sh).
# Sourced by /test.sh; it sources the target plugin /vm/target.sh, which must
# define  target_start <portal>...  and  target_stop.
#
# What the target is configured with, and what the scenarios check. A target
# plugin may override EXPECT_* if its product cannot be configured to match.
set -o pipefail
[ -f /vm/target.env ] && . /vm/target.env
: "${IQN:=iqn.2026-11.org.tessera:vm-disk}"
: "${CHAP_USER:=tessera-initiator}"
: "${CHAP_SECRET:=tessera-secret-16}"
: "${WRONG_SECRET:=not-the-secret-00}"
: "${SIZE_MB:=64}"
: "${VENDOR:=TESSERA}"
: "${PRODUCT:=VMTESTDISK}"
: "${SERIAL:=TSRVM000001}"
: "${PORT:=3260}"
: "${FIO_SIZE:=16M}"

FAILED=0
T0=$(cut -d. -f1 /proc/uptime)

now() { cut -d' ' -f1 /proc/uptime; }
step() { echo "=== [$(now)s] $*"; }
ok()   { echo "  ok: $*"; }
fail() { echo "  FAIL: $*"; FAILED=1; }
die()  { echo "  FATAL: $*"; dump_logs; exit 1; }
check() { # check "<description>" cmd...
	local what="$1"; shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

dump_logs() {
	for f in /tmp/target.log /tmp/iscsid.log /tmp/multipathd.log; do
		[ -s "$f" ] || continue
		echo "----- tail $f"; tail -n 30 "$f"
	done
	echo "----- dmesg (tail)"; dmesg | tail -n 30
}

# A scenario that outlives its budget is killed from the host, and whatever
# the daemons logged would be lost: VM_WATCHDOG seconds in (run.sh sets it to
# the host's timeout less 40 s) every target log's warnings and tail, the
# sessions and the kernel's last lines go to the console first.
watchdog_dump() {
	echo "  WATCHDOG: ${VM_WATCHDOG}s into the scenario and still running; the state before the host's timeout:"
	for f in /tmp/target*.log /tmp/iscsid.log /tmp/multipathd.log; do
		[ -s "$f" ] || continue
		echo "----- $f: warnings and errors (last 40)"
		grep -E ' (warning|error|critical) ' "$f" | tail -n 40
		echo "----- $f: tail"; tail -n 15 "$f"
	done
	echo "----- iscsiadm -m session"; iscsiadm -m session 2>&1 | head -n 10
	echo "----- dmesg (tail)"; dmesg | tail -n 30
}
if [ -n "${VM_WATCHDOG:-}" ]; then
	( sleep "$VM_WATCHDOG"; watchdog_dump ) &
fi

# wait_until <seconds> cmd... : poll every 0.5 s until <seconds> have passed
# (by the clock: one try of a command that blocks on a dead path may itself
# take many seconds under TCG)
wait_until() {
	local end=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || return 1
		sleep 0.5
	done
}

. /vm/target.sh
# the plugin may set these from what it was configured with
: "${EXPECT_VENDOR:=$VENDOR}"
: "${EXPECT_PRODUCT:=$PRODUCT}"
: "${EXPECT_SERIAL:=$SERIAL}"
: "${EXPECT_SIZE_BYTES:=$((SIZE_MB * 1024 * 1024))}"

start_iscsid() {
	iscsid -f >/tmp/iscsid.log 2>&1 &
	ISCSID_PID=$!
	# iscsiadm answers "No active sessions" (exit 21) once iscsid listens
	wait_until 10 sh -c 'iscsiadm -m session 2>&1 | grep -q "No active sessions"'
	kill -0 "$ISCSID_PID" 2>/dev/null || die "iscsid did not start"
}

start_udevd() {
	/usr/lib/systemd/systemd-udevd --daemon >/tmp/udevd.log 2>&1 || echo "  note: udevd failed to start"
	udevadm trigger --subsystem-match=block --action=add >/dev/null 2>&1
	udevadm settle --timeout=10 >/dev/null 2>&1
}

# node_set <portal> <name> <value>
node_set() {
	iscsiadm -m node -T "$IQN" -p "$1" -o update -n "$2" -v "$3"
}
# chap <portal> <secret>
chap() {
	node_set "$1" node.session.auth.authmethod CHAP &&
	node_set "$1" node.session.auth.username "$CHAP_USER" &&
	node_set "$1" node.session.auth.password "$2"
}
login()  { iscsiadm -m node -T "$IQN" -p "$1" --login; }
logout() { iscsiadm -m node -T "$IQN" -p "$1" --logout; }
session_count() { iscsiadm -m session 2>/dev/null | grep -c "$IQN"; }

# disks: the sd devices whose INQUIRY vendor/product match the target's
trim() { sed -e 's/^ *//' -e 's/ *$//'; }
disks() {
	local d v m
	for d in /sys/block/sd*; do
		[ -e "$d/device/vendor" ] || continue
		v=$(trim < "$d/device/vendor"); m=$(trim < "$d/device/model")
		[ "$v" = "$EXPECT_VENDOR" ] && [ "$m" = "$EXPECT_PRODUCT" ] && echo "${d##*/}"
	done
}
disk_count() { disks | wc -l; }
have_disks() { [ "$(disk_count)" -ge "$1" ]; }

# check_identity <sdX>: vendor/product via sysfs, serial via VPD 0x80, size
check_identity() {
	local sd="$1" sn bytes
	ok "disk /dev/$sd vendor='$(trim < /sys/block/$sd/device/vendor)' product='$(trim < /sys/block/$sd/device/model)'"
	sn=$(sg_inq -p 0x80 "/dev/$sd" 2>/dev/null | sed -n 's/^ *Unit serial number: *//p' | trim)
	check "serial '$sn' = '$EXPECT_SERIAL'" [ "$sn" = "$EXPECT_SERIAL" ]
	bytes=$(( $(cat /sys/block/$sd/size) * 512 ))
	check "size $bytes = $EXPECT_SIZE_BYTES" [ "$bytes" = "$EXPECT_SIZE_BYTES" ]
}

# run_fio <label> <device> [extra fio args]: random writes then verified reads
run_fio() {
	local label="$1" dev="$2" rc; shift 2
	fio --name="$label" --filename="$dev" --ioengine=libaio --direct=1 \
	    --iodepth=32 --bs=4k --rw=randwrite --size="$FIO_SIZE" \
	    --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 \
	    "$@" >/tmp/fio-$label.log 2>&1
	rc=$?
	grep -E '^ *(read|write|READ|WRITE):|err=|verify:|crc32c|bad magic|Input/output' /tmp/fio-$label.log |
		sed "s/^/  [fio $label, measured under TCG emulation] /"
	return $rc
}

# multipath_one_map N SECONDS: runs multipath, checks that exactly one map
# forms with N active paths (waiting up to SECONDS for each), and sets MAP
# and DEV (its block device).
multipath_one_map() {
	paths=$1 within=$2
	udevadm settle --timeout=10 >/dev/null 2>&1
	multipath -v2 2>&1 | sed 's/^/  /'
	maps() { dmsetup ls --target multipath 2>/dev/null | grep -v '^No devices' | awk '{print $1}'; }
	wait_until "$within" sh -c "[ \$(dmsetup ls --target multipath | grep -vc '^No devices') = 1 ]"
	NMAPS=$(maps | wc -l)
	check "exactly one multipath map ($NMAPS)" [ "$NMAPS" = 1 ]
	MAP=$(maps | head -n1)
	wait_until "$within" sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = $paths ]"
	multipath -ll 2>&1 | sed 's/^/  /'
	check "map $MAP has $paths active paths" [ "$(active_paths)" = "$paths" ]
	DEV="/dev/mapper/$MAP"
	wait_until 10 test -b "$DEV" || { DEV="/dev/$(ls /sys/block | grep '^dm-' | head -n1)"; echo "  note: using $DEV"; }
	[ -b "$DEV" ] || die "no block device for map $MAP"
}
active_paths() { multipath -ll 2>/dev/null | grep -c 'active ready running'; }

# portal_of <sdX>: the portal (address:port) of the iSCSI session behind a disk
portal_of() {
	local s c
	s=$(readlink -f "/sys/block/$1/device" | sed -n 's#.*/session\([0-9]*\)/.*#\1#p')
	[ -n "$s" ] || return 1
	for c in /sys/class/iscsi_connection/connection"$s":*; do
		[ -e "$c/persistent_address" ] || continue
		echo "$(cat "$c/persistent_address"):$(cat "$c/persistent_port")"
		return 0
	done
	return 1
}

# rtpg_groups: sg_rtpg --decode output on stdin -> one line per target port
# group: "<group id> <access state> <relative target port ids, comma separated>"
rtpg_groups() {
	awk '/target port group id :/ { if (g != "") print g, st, ports; g = $6; st = ""; ports = "" }
	     /asymmetric access state :/ { s = $0; sub(/.*state : /, "", s); split(s, a, " "); st = a[1] }
	     /^      0x/ { ports = ports (ports == "" ? "" : ",") $1 }
	     END { if (g != "") print g, st, ports }'
}

# vpd_port <sdX>: "<target port group> <relative target port>" from VPD 0x83
vpd_port() {
	local out
	out=$(sg_vpd -p di "/dev/$1" 2>/dev/null) || return 1
	echo "$(echo "$out" | sed -n 's/^ *Target port group: //p' | head -n1)" \
	     "$(echo "$out" | sed -n 's/^ *Relative target port: //p' | head -n1)"
}

# sg_retry <sg command>...: an sg3-utils command run again while it reports a
# unit attention (up to 3 times) or NOT READY (up to 6 times, 1 s apart), as
# the kernel retries its own commands: ALUA state changes and resets queue a
# unit attention for every I_T nexus, and scsi_dh_alua retries a command that
# met an access state in transition (02/04/0A) for a while
sg_retry() {
	local n=0 out rc
	while :; do
		out=$("$@" 2>&1); rc=$?
		n=$((n + 1))
		[ "$rc" != 0 ] && [ "$n" -lt 3 ] && echo "$out" | grep -qi 'unit attention' && continue
		if [ "$rc" != 0 ] && [ "$n" -lt 6 ] && echo "$out" | grep -qi 'not ready'; then sleep 1; continue; fi
		echo "$out"
		return $rc
	done
}

# path_log: what the kernel logged about the paths since the last dmesg -c
# (ALUA states, sense data, connection errors, failed requests), counted: what
# dm-multipath absorbed by moving I/O to another path
path_log() {
	dmesg | grep -E 'Sense Key|Add\. Sense|ping timeout|conn error|I/O error, dev sd|reservation conflict|alua: port group|failing path' |
		sed -e 's/^\[ *[0-9.]*\] *//' -e 's/ sector [0-9].*//' -e 's/tag#[0-9]* //' -e 's/, last rx.*//' |
		sort | uniq -c | sort -rn | head -n 25
}
