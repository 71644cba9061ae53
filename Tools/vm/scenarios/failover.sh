# Scenario "failover" (TARGET=tesserad only):
# node failover under the Linux kernel initiator. Three tesserad nodes as in
# the cluster scenario (127.0.0.i, store lease $CLUSTER_LEASE), one session
# per node, one dm-multipath map with three paths (Tools/host settings).
#  1. ext4 on the map: files with sha256 checksums; in the background fio
#     --verify=crc32c (direct, write+verify passes until stopped) on its own
#     file and a probe that writes and reads 4 KiB with O_DIRECT every 100 ms
#     (timestamps: the longest gap is the pause the host saw).
#  2. kill -9 of the node holding the most primaries ("primaries-here" in its
#     start-up log) in the middle of fio: the survivors fence it (dead_nodes),
#     fio passes (every pass, including the one across the kill), no I/O
#     error on the dm device / ext4, checksums pass; the pause is printed.
#     The node is restarted; every node's /health reaches stale 0,
#     resyncing 0, dead_nodes [] (bounded), the resync lines are printed.
#  3. persistent reservation under fio: REGISTER on every path + RESERVE
#     Write Exclusive - All Registrants through the path of a second node,
#     then kill -9 of that node in the middle of fio; everything of step 2 is
#     checked again (fio and the probe are the holder writing through the
#     survivors), and through a survivor's path the reservation is still
#     listed. With the node still down: e2fsck and the checksums across a
#     remount; the map is taken down and a second initiator (another iSCSI
#     initiator name, its own session to a survivor) is refused with
#     RESERVATION CONFLICT while the holder writes; RELEASE and CLEAR through
#     the survivor; then the node is restarted and converges.
#  4. SPC-2: RESERVE(6) (sg_raw 16 00 00 00 00 00) through the third node,
#     which is killed next; through a survivor a second nexus gets
#     RESERVATION CONFLICT; a LOGICAL UNIT RESET (sg_reset --device) through
#     the survivor releases it; RESERVE(6) through the survivor then succeeds.
# Every wait is bounded; on failure the node logs are dumped.
# Runs inside the guest as /test.sh; exit status 0 = pass.
. /vm/lib.sh
: "${FIO_FO_SIZE:=8M}"
# FAILOVER_PARTS=reservations leaves fio out of steps 2 and 3 (no first
# kill; the second kill without load)
: "${FAILOVER_PARTS:=all}"
N=3
PORTALS="127.0.0.1:$PORT 127.0.0.2:$PORT 127.0.0.3:$PORT"
portal() { echo "127.0.0.$1:$PORT"; }
EXPECT_SIZE_BYTES=$((CLUSTER_SIZE_MB * 1024 * 1024))
# the store lease here (the plugin's CLUSTER_LEASE, 10 s, lapsed now and then
# under TCG on a loaded host: port groups flapping unavailable); failover
# detection takes about one lease
CLUSTER_LEASE="${FAILOVER_LEASE:-15s}"
SECOND_IQN=iqn.2026-11.org.tessera:vm-second-initiator

dump_logs() {
	for f in /tmp/target-node1.log /tmp/target-node2.log /tmp/target-node3.log; do
		[ -s "$f" ] || continue
		echo "----- $f: warnings and errors, lease and port group lines (last 80)"
		grep -E ' (warning|error|critical) |lapsed|fenced|lease|port group|unavailable|store' "$f" | tail -n 80
		echo "----- tail $f"; tail -n 20 "$f"
	done
	for f in /tmp/iscsid.log /tmp/multipathd.log; do
		[ -s "$f" ] || continue
		echo "----- tail $f"; tail -n 40 "$f"
	done
	echo "----- dmesg (tail)"; dmesg | tail -n 40
}
# path_events: what the kernel said about the paths (sense data, ALUA
# states, iSCSI connection errors, dm-multipath path failures)
path_events() {
	dmesg | grep -E 'Sense Key|Add. Sense|alua|connection[0-9]+:[0-9]+|session recovery|multipath: .*[Ff]ailing|reinstat|rejecting' | tail -n 60
}
type cluster_restart >/dev/null 2>&1 || die "target plugin has no cluster_restart (TARGET=tesserad only)"

# ---- helpers ---------------------------------------------------------------
# health <i>: node i's /health JSON; status 0 only for a 200 (busybox-static's
# wget crashes in the guest: HTTP/1.0 through nc)
health() {
	local r
	r=$(printf 'GET /health HTTP/1.0\r\n\r\n' | timeout 5 nc "127.0.0.$1" "808$1" 2>/dev/null | tr -d '\r')
	echo "$r" | sed -n '/^{/p'
	echo "$r" | head -n1 | grep -q '^HTTP/1\.[01] 200'
}
# converged: every node answers 200 with stale 0, resyncing 0, dead_nodes []
converged() {
	local i h
	for i in 1 2 3; do
		h=$(health "$i") || return 1
		echo "$h" | grep -q '"stale":0,"resyncing":0' || return 1
		echo "$h" | grep -q '"dead_nodes":\[\]' || return 1
	done
}
show_health() {
	local i
	for i in 1 2 3; do
		echo "  [node $i /health] $(health "$i" | grep -o '"status":"[a-z]*"\|"replicas":{[^}]*}\|"dead_nodes":\[[^]]*\]\|"resyncs":\[[^]]*\]' | tr '\n' ' ')"
	done
}
# holds_dead <node> <dead>: node's /health lists dead in dead_nodes
holds_dead() { health "$1" | grep -Eq '"dead_nodes":\[([0-9]+,)*'"$2"'[],]'; }
survivors_hold_dead() { local i; for i in $(others "$1"); do holds_dead "$i" "$1" || return 1; done; }
others() { local i; for i in 1 2 3; do [ "$i" != "$1" ] && echo "$i"; done; }
primaries_here() { grep -o 'primaries-here[^0-9]*[0-9]*' "/tmp/target-node$1.log" | head -n1 | grep -o '[0-9]*$'; }
lines() { wc -l < "$1"; }
# multipathd_active <n>: multipathd holds exactly n paths active with a ready checker.
# Its own view: `multipath -ll` probes every path and can hang for tens of
# seconds on a dead one.
multipathd_active() { [ "$(multipathd show paths format '%t %T' 2>/dev/null | grep -c '^active *ready')" = "$1" ]; }
# sd_of <node>: the disk of our (default initiator) session to node i
sd_of() {
	local sd
	for sd in $(disks); do
		[ "$(portal_of "$sd")" = "$(portal "$1")" ] || continue
		readlink -f "/sys/block/$sd/device" | grep -q "/session$(session_of "$1")/" && { echo "$sd"; return 0; }
	done
	return 1
}
# session_of <node>: the default iface's session id to node i
session_of() {
	iscsiadm -m session 2>/dev/null | awk -v p="$(portal "$1")," '$3 ~ "^"p {gsub(/[\[\]]/, "", $2); print $2; exit}'
}
io_errors() { # dm / ext4 errors in dmesg since the last dmesg -c
	dmesg | grep -E 'I/O error, dev dm-|Buffer I/O error|EXT4-fs (error|warning)|EXT4-fs \(dm-[0-9]+\): (error|I/O)|dm-[0-9]+.*critical'
}
kill_node() { # kill_node <i>: kill -9 of node i's PID, prints the time
	local pid; pid=$(cluster_pid "$1")
	kill -9 "$pid"
	KILL_T=$(now)
	step "kill -9 node $1 (pid $pid) at ${KILL_T}s"
}
# wait_failover <dead>: the survivors list it dead (fenced), bounded
wait_failover() {
	local t0; t0=$(now)
	if wait_until 90 survivors_hold_dead "$1"; then
		ok "the survivors hold node $1 dead $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s after the kill check began"
	else
		fail "the survivors do not list node $1 in dead_nodes within 90 s"
	fi
	for i in $(others "$1"); do
		tail -n +"$(eval echo \$LOGL_$i)" "/tmp/target-node$i.log" | grep -E 'lapsed|fenced|failed over|promot|port group' |
			head -n 8 | sed "s/^/  [node $i log] /"
	done
	show_health
}
mark_logs() { local i; for i in 1 2 3; do eval "LOGL_$i=\$(( \$(lines /tmp/target-node$i.log) + 1 ))"; done; }
# restart_and_converge <i>
restart_and_converge() {
	local i="$1" t0
	step "restart node $i, wait for stale 0, resyncing 0, dead_nodes [] everywhere"
	mark_logs
	t0=$(now)
	cluster_restart "$i" || { fail "node $i did not come back ('tesserad ready')"; dump_logs; return 1; }
	ok "node $i ready again after $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s"
	if wait_until 300 converged; then
		ok "converged $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s after the restart"
	else
		fail "not converged within 300 s of node $i's restart"
	fi
	show_health
	for j in 1 2 3; do
		tail -n +"$(eval echo \$LOGL_$j)" "/tmp/target-node$j.log" | grep -E 'resync (started|progress|finished)' |
			sed "s/^/  [node $j log] /" > /tmp/resync-lines.$j
		echo "  node $j: $(grep -c 'resync started' /tmp/resync-lines.$j) started, $(grep -c 'resync progress' /tmp/resync-lines.$j) progress, $(grep -c 'resync finished' /tmp/resync-lines.$j) finished"
		head -n 12 /tmp/resync-lines.$j
		[ "$(lines /tmp/resync-lines.$j)" -gt 12 ] && { echo "  [node $j log] ..."; tail -n 3 /tmp/resync-lines.$j; }
	done
	check "resync lines logged (started + finished)" sh -c 'cat /tmp/resync-lines.* | grep -q "resync started" && cat /tmp/resync-lines.* | grep -q "resync finished"'
}

# ---- background load: fio passes and the 100 ms probe ----------------------
fio_loop() { # fio_loop <label>: write+verify passes until /tmp/fio.stop
	local n=0 s rc
	while [ ! -f /tmp/fio.stop ]; do
		n=$((n + 1)); s=$(now)
		fio --name="$1-$n" --filename=/mnt/t/fio.dat --ioengine=libaio --direct=1 \
		    --iodepth=16 --bs=4k --rw=randwrite --size="$FIO_FO_SIZE" \
		    --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 >"/tmp/fio-$1-$n.log" 2>&1 &
		echo $! > /tmp/fio.pid
		wait $!; rc=$?
		echo "$n $s $(now) $rc" >> "/tmp/fio-$1.runs"
	done
}
probe_loop() { # probe_loop <label>: 4 KiB O_DIRECT write + read every 100 ms until /tmp/probe.stop
	local t0 r
	while [ ! -f /tmp/probe.stop ]; do
		t0=$(now)
		if dd if=/tmp/probe.blk of=/mnt/t/probe bs=4096 count=1 oflag=direct conv=notrunc 2>/dev/null &&
		   dd if=/mnt/t/probe of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then r=ok; else r=ERR; fi
		echo "$t0 $(now) $r" >> "/tmp/probe-$1.log"
		usleep 100000
	done
}
start_load() {
	rm -f /tmp/fio.stop /tmp/probe.stop "/tmp/fio-$1.runs" "/tmp/probe-$1.log"
	dmesg -c >/dev/null
	fio_loop "$1" & FIO_LOOP=$!
	probe_loop "$1" & PROBE_LOOP=$!
}
loop_gone() { ! kill -0 "$1" 2>/dev/null; }
# stop_load <label>: lets the current fio pass finish, then checks every pass.
# The pass running across the kill writes before it and through the
# survivors after it, then reads everything back (--do_verify): that is
# the pass that matters, so no further pass is started.
stop_load() {
	local l="$1"
	touch /tmp/fio.stop /tmp/probe.stop
	if ! wait_until 300 loop_gone "$FIO_LOOP"; then
		fail "fio did not finish within 300 s of the stop"
		kill "$(cat /tmp/fio.pid)" 2>/dev/null; kill "$FIO_LOOP" 2>/dev/null
	fi
	wait_until 10 loop_gone "$PROBE_LOOP" || kill "$PROBE_LOOP" 2>/dev/null
	wait "$FIO_LOOP" "$PROBE_LOOP" 2>/dev/null
	sed 's/^/  [fio pass: n start end rc] /' "/tmp/fio-$l.runs"
	check "every fio pass exited 0 ($(lines /tmp/fio-$l.runs) passes)" \
		[ "$(awk '$4 != 0' "/tmp/fio-$l.runs" | grep -c .)" = 0 -a "$(lines /tmp/fio-$l.runs)" -gt 0 ]
	check "a fio pass ran across the kill at ${KILL_T}s" \
		sh -c "awk -v k=$KILL_T '\$2 < k && \$3 > k' /tmp/fio-$l.runs | grep -q ."
	for f in /tmp/fio-$l-*.log; do
		grep -E 'err=|verify:|crc32c|bad magic|Input/output|IOPS' "$f" | sed "s|^|  [${f#/tmp/} (TCG)] |" | head -n 4
	done
	check "no fio error (err= 0 in every pass)" sh -c "! grep -h 'err=' /tmp/fio-$l-*.log | grep -vq 'err= 0'"
	# the pause: the longest time without a completed probe, around the kill
	awk -v k="$KILL_T" '
		{ n++; if ($3 != "ok") bad++
		  if (prev != "") { g = $2 - prev; if (g > max) { max = g; from = prev; to = $2 } }
		  d = $2 - $1; if (d > maxd) { maxd = d; at = $1 }
		  prev = $2 }
		END { printf "  probe (4 KiB O_DIRECT write + read every 100 ms through ext4 on the map, TCG): %d probes, %d failed\n", n, bad
		      printf "  PAUSE %s: longest gap between completed probes %.2f s (%.2fs -> %.2fs; kill at %.2fs), longest single probe %.2f s (from %.2fs)\n", lbl, max, from, to, k, maxd, at }' \
		lbl="$l" "/tmp/probe-$l.log"
	awk -v k="$KILL_T" '$1 > k - 2 && $1 < k + 1 || $2 - $1 > 1' "/tmp/probe-$l.log" | head -n 12 | sed 's/^/  [probe start end result] /'
	check "every probe succeeded" [ "$(awk '$3 != "ok"' "/tmp/probe-$l.log" | grep -c .)" = 0 ]
	path_log | sed "s/^/  [kernel, paths, $l] /"
	if io_errors > /tmp/ioerr; then
		fail "I/O errors on the map / ext4:"; head -n 20 /tmp/ioerr | sed 's/^/    /'
		path_events | sed 's/^/  [kernel path events] /'
		for i in 1 2 3; do
			tail -n +"$(eval echo \$LOGL_$i)" "/tmp/target-node$i.log" 2>/dev/null | grep -E ' (warning|error|critical) ' |
				head -n 40 | sed "s/^/  [node $i log since the kill] /"
		done
	else
		ok "no I/O error on the dm device or ext4"
	fi
	echo 3 > /proc/sys/vm/drop_caches
	check "ext4 checksums ($(lines /tmp/sums) files, caches dropped)" sh -c 'cd /mnt/t && sha256sum -c -s /tmp/sums'
}
# fio_kill <label> <node>: background load, kill -9 node mid-fio, checks
fio_kill() {
	local l="$1" v="$2"
	step "$l: fio verify + probe in the background, kill -9 node $v in the middle of fio"
	start_load "$l"
	# fio's first pass well under way (files laid out, I/O flowing)
	wait_until 120 sh -c "[ -s /tmp/fio-$l-1.log ] && [ \$(wc -l < /tmp/probe-$l.log 2>/dev/null || echo 0) -ge 20 ]"
	sleep 5
	mark_logs
	kill_node "$v"
	wait_failover "$v"
	wait_until 60 multipathd_active 2
	timeout 10 multipathd show topology 2>&1 | grep -E 'status=|[0-9]+:[0-9]+:[0-9]+:[0-9]+' | sed 's/^/  [multipath after the kill] /'
	stop_load "$l"
}

# ---- 1. three nodes, three sessions, one map ---------------------------------
type cluster_start >/dev/null 2>&1 || die "target plugin has no cluster_start (TARGET=tesserad only)"
step "start $N tesserad nodes ($PORTALS, lease $CLUSTER_LEASE)"
cluster_start "$N" || die "the cluster did not start"
IQN="$CLUSTER_IQN"
ok "three nodes ready, target $IQN"
for i in 1 2 3; do echo "  node $i: primaries-here=$(primaries_here "$i")"; done
wait_until 120 converged || fail "the fresh cluster is not converged within 120 s"
show_health
start_iscsid
start_udevd
mkdir -p /etc/multipath
multipathd -d -s >/tmp/multipathd.log 2>&1 &
MPD_PID=$!
wait_until 10 multipathd show status || die "multipathd did not start"

step "discovery and login through all three portals"
iscsiadm -m discovery -t sendtargets -p "$(portal 1)" 2>&1 | sed 's/^/  /'
for p in $PORTALS; do login "$p" | sed 's/^/  /' || die "login to $p failed"; done
check "three sessions" [ "$(session_count)" = 3 ]
wait_until 30 have_disks 3 || die "expected 3 disks, have: $(disks | tr '\n' ' ')"
# a disk scanned while its port group was unavailable has size 0: rescan it
full_size() { [ "$(( $(cat /sys/block/$1/size) * 512 ))" = "$EXPECT_SIZE_BYTES" ] || { echo 1 > "/sys/block/$1/device/rescan"; return 1; }; }
for sd in $(disks); do
	wait_until 60 full_size "$sd" || fail "/dev/$sd: size $(( $(cat /sys/block/$sd/size) * 512 )) after 60 s of rescans"
	echo "  /dev/$sd: $(portal_of "$sd"), $(( $(cat /sys/block/$sd/size) * 512 )) bytes"
done
path_log | sed 's/^/  [kernel, paths, after login] /'
multipath_one_map 3 30
for i in 1 2 3; do eval "SD_$i=\$(sd_of $i)"; done
ok "node 1 /dev/$SD_1, node 2 /dev/$SD_2, node 3 /dev/$SD_3"
[ -n "$SD_1" ] && [ -n "$SD_2" ] && [ -n "$SD_3" ] || die "cannot tell which disk is which node"

# victims: the node with the most primaries, then the next, then the third
V1=$(for i in 1 2 3; do echo "$(primaries_here "$i") $i"; done | sort -k1,1nr -k2,2n | awk 'NR == 1 {print $2}')
V2=$(for i in $(others "$V1"); do echo "$(primaries_here "$i") $i"; done | sort -k1,1nr -k2,2n | awk 'NR == 1 {print $2}')
V3=$(for i in $(others "$V1"); do [ "$i" != "$V2" ] && echo "$i"; done)
ok "kills: node $V1 (most primaries: $(primaries_here "$V1")), then node $V2 (holding a persistent reservation), then node $V3 (SPC-2)"

# ---- 2. ext4 + checksums ---------------------------------------------------------
step "ext4 on $DEV: files with sha256"
mkfs.ext4 -q -F "$DEV" || die "mkfs.ext4 failed"
mkdir -p /mnt/t && mount -t ext4 "$DEV" /mnt/t || die "mount failed"
i=0
while [ $i -lt 8 ]; do
	dd if=/dev/urandom of=/mnt/t/f$i bs=64k count=$((4 + i * 8)) 2>/dev/null || fail "write f$i"
	i=$((i + 1))
done
mkdir -p /mnt/t/dir && cp /mnt/t/f3 /mnt/t/dir/copy
(cd /mnt/t && find . -type f | sort | xargs sha256sum) > /tmp/sums
dd if=/dev/urandom of=/tmp/probe.blk bs=4096 count=1 2>/dev/null
dd if=/tmp/probe.blk of=/mnt/t/probe bs=4096 count=1 oflag=direct 2>/dev/null || die "probe file"
sync
ok "$(lines /tmp/sums) files, $(du -sk /mnt/t | cut -f1) KiB"

# ---- 3. kill the node with the most primaries mid-fio, restart it ---------------
logged() { local l="$1" out rc; shift; out=$(sg_retry "$@"); rc=$?; echo "$out" | sed "s/^/  [$l] /"; return $rc; }
has() { local t="$1" pat; shift; for pat in "$@"; do echo "$t" | grep -q -- "$pat" || return 1; done; }
if [ "$FAILOVER_PARTS" != reservations ]; then
fio_kill kill1 "$V1"
restart_and_converge "$V1"
wait_until 120 multipathd_active 3 ||
	fail "the map did not get its third path back within 120 s"
timeout 10 multipathd show topology 2>&1 | grep -E 'status=|[0-9]+:[0-9]+:[0-9]+:[0-9]+' | sed 's/^/  [multipath after the restart] /'
for i in 1 2 3; do eval "SD_$i=\$(sd_of $i)"; done
fi

# ---- 4. a persistent reservation held across the second kill, under fio -------
# open-iscsi gives every session its own ISID, so each path is its own
# initiator port: the host registers its key on every path (as mpathpersist
# and fence_scsi do; ALL_TG_PT would cover only one initiator port's target
# ports), and reserves Write Exclusive - All Registrants, whose holder is every
# registered I_T nexus (SPC-4 5.12.9 a)), so it keeps writing through whichever
# path survives while an unregistered host is refused. The reservation is
# taken through the node that is killed next, in the middle of fio: fio and
# the probe are the holder's writes through the survivors.
eval "H=\$SD_$V2"
S1=$(others "$V2" | head -n1); S2=$(others "$V2" | tail -n1)
eval "Y=\$SD_$S1"
step "persistent reservation: REGISTER on every path + RESERVE Write Exclusive - All Registrants through node $V2 (/dev/$H)"
for i in 1 2 3; do
	eval "P=\$SD_$i"
	check "REGISTER key 0x1234 through node $i (/dev/$P)" \
		logged "register $i" sg_persist --out --register --param-sark=0x1234 "/dev/$P"
done
check "RESERVE Write Exclusive - All Registrants (type 7) through node $V2" \
	logged reserve sg_persist --out --reserve --param-rk=0x1234 --prout-type=7 "/dev/$H"
res=$(sg_retry sg_persist --in --read-reservation "/dev/$Y"); echo "$res" | sed 's/^/  [before the kill, read-reservation via node '"$S1"'] /'
if [ "$FAILOVER_PARTS" != reservations ]; then
	fio_kill kill2 "$V2"
	check "the reservation's holder wrote through the survivors after the kill (every fio pass and probe above)" \
		[ "$(awk -v k="$KILL_T" '$3 > k && $4 == 0' /tmp/fio-kill2.runs | grep -c .)" -gt 0 ]
else
	mark_logs
	kill_node "$V2"
	wait_failover "$V2"
fi
res=$(sg_retry sg_persist --in --read-reservation "/dev/$Y"); echo "$res" | sed "s/^/  [node $S1 read-reservation] /"
check "through survivor node $S1 (/dev/$Y): the reservation is still held (Write Exclusive, all registrants)" \
	has "$res" 'Reservation follows' 'type: Write Exclusive, all registrants'
logged "node $S1 read-full-status" sg_persist --in --read-full-status "/dev/$Y"

if [ "$FAILOVER_PARTS" != reservations ]; then
	step "ext4 (node $V2 still down): unmount, e2fsck, remount, checksums"
	umount /mnt/t || fail "umount"
	check "e2fsck -f clean" e2fsck -f -n "$DEV"
	mount -t ext4 "$DEV" /mnt/t && check "checksums after remount" sh -c 'cd /mnt/t && sha256sum -c -s /tmp/sums'
fi
umount /mnt/t 2>/dev/null
# the second initiator's path must not join the map (its writes are refused):
# from here on the sd paths are used directly, no map, no multipathd
multipath -F >/dev/null 2>&1
kill "$MPD_PID" 2>/dev/null; wait "$MPD_PID" 2>/dev/null
ok "no map; node $S1 /dev/$Y"

# write_block <dev>: one 4 KiB direct write at 16 MiB (ext4's data, not needed any more)
write_block() { dd if=/dev/zero of="$1" bs=4096 count=1 seek=4096 oflag=direct conv=notrunc 2>/dev/null; }
write_retry() { local n=0; while [ $n -lt 3 ]; do write_block "$1" && return 0; n=$((n + 1)); sleep 1; done; return 1; }
refused() {
	local hctl; hctl=$(basename "$(readlink -f "/sys/block/$1/device")")
	dmesg -c >/dev/null
	! write_block "/dev/$1" && dmesg | grep -q "$hctl: reservation conflict"
}
step "node $V2 down: the holder writes through node $S1, a second initiator through node $S2 is refused"
check "the holder (its registered path) writes through survivor node $S1" write_retry "/dev/$Y"
# a second I_T nexus: another initiator name, its own session to survivor S2
iscsiadm -m iface -I second -o new >/dev/null 2>&1
iscsiadm -m iface -I second -o update -n iface.initiatorname -v "$SECOND_IQN" >/dev/null
before=$(disks | tr '\n' ' ')
iscsiadm -m discovery -t sendtargets -p "$(portal "$S2")" -I second 2>&1 | sed 's/^/  [second initiator] /'
iscsiadm -m node -T "$IQN" -p "$(portal "$S2")" -I second --login 2>&1 | sed 's/^/  [second initiator] /'
new_disk() { for d in $(disks); do case " $before " in *" $d "*) ;; *) echo "$d"; return 0 ;; esac; done; return 1; }
wait_until 30 new_disk
Z=$(new_disk)
if [ -n "$Z" ]; then
	ok "second initiator $SECOND_IQN: /dev/$Z through node $S2"
	check "a write by the second initiator (/dev/$Z, node $S2) is refused with RESERVATION CONFLICT" refused "$Z"
	dmesg | grep -i 'reservation conflict' | head -n 3 | sed 's/^/  [dmesg] /'
	iscsiadm -m node -T "$IQN" -p "$(portal "$S2")" -I second --logout >/dev/null 2>&1
	iscsiadm -m node -T "$IQN" -p "$(portal "$S2")" -I second -o delete >/dev/null 2>&1
else
	fail "the second initiator's disk did not appear"
fi
check "RELEASE through survivor node $S1 (a holder: every registrant is one)" \
	logged release sg_persist --out --release --param-rk=0x1234 --prout-type=7 "/dev/$Y"
res=$(sg_retry sg_persist --in --read-reservation "/dev/$Y")
check "no reservation after the release" has "$res" 'NO reservation held'
check "CLEAR through survivor node $S1 drops every registration (the dead path's too)" \
	logged clear sg_persist --out --clear --param-rk=0x1234 "/dev/$Y"
out=$(sg_retry sg_persist --in --read-keys "/dev/$Y"; sg_retry sg_persist --in --read-reservation "/dev/$Y")
check "no key and no reservation left" has "$out" 'NO registered reservation keys' 'NO reservation held'
restart_and_converge "$V2"
wait_until 60 sd_of "$V2" || fail "node $V2's disk is not back"

# ---- 5. SPC-2 RESERVE(6) through the node that dies, LU reset through a survivor ---
# spc2 <label> <sdX> <cdb bytes>...: sg_raw, unit attentions retried (up to 6 times)
spc2() {
	local l="$1" d="$2" n=0 out rc; shift 2
	while :; do
		out=$(sg_raw "/dev/$d" "$@" 2>&1); rc=$?; n=$((n + 1))
		[ "$rc" != 0 ] && [ "$n" -lt 6 ] && echo "$out" | grep -qi 'unit attention' && continue
		echo "$out" | sed "s/^/  [$l] /"; return $rc
	done
}
for i in 1 2 3; do eval "SD_$i=\$(sd_of $i)"; done
V4=$V3
eval "H=\$SD_$V4"
S1=$(others "$V4" | head -n1)
eval "Y=\$SD_$S1"
step "SPC-2: RESERVE(6) through node $V4 (/dev/$H), kill -9 node $V4, LU reset through node $S1 (/dev/$Y)"
check "RESERVE(6) through node $V4" spc2 "reserve(6) via node $V4" "$H" 16 00 00 00 00 00
check "RESERVE(6) through node $S1 before the kill: reservation conflict" \
	sh -c "sg_raw /dev/$Y 16 00 00 00 00 00 2>&1 | tee /dev/stderr | grep -qi 'reservation conflict'"
mark_logs
kill_node "$V4"
wait_failover "$V4"
out=$(spc2 "turs via node $S1" "$Y" 00 00 00 00 00 00)
echo "$out"
check "TEST UNIT READY through survivor node $S1 (a second nexus): reservation conflict" has "$out" '[Rr]eservation [Cc]onflict'
out=$(spc2 "reserve(6) via node $S1" "$Y" 16 00 00 00 00 00)
echo "$out"
check "RESERVE(6) through survivor node $S1: reservation conflict" has "$out" '[Rr]eservation [Cc]onflict'
out=$(sg_reset --device "/dev/$Y" 2>&1); rc=$?
echo "$out" | sed 's/^/  [sg_reset --device] /'
check "LOGICAL UNIT RESET through node $S1 (sg_reset --device exit $rc)" [ "$rc" = 0 ]
dmesg | grep -iE 'reset|abort' | tail -n 5 | sed 's/^/  [dmesg] /'
check "RESERVE(6) through survivor node $S1 after the LU reset succeeds" spc2 "reserve(6) via node $S1" "$Y" 16 00 00 00 00 00
check "RELEASE(6) through node $S1" spc2 "release(6) via node $S1" "$Y" 17 00 00 00 00 00
tail -n +"$(eval echo \$LOGL_$S1)" "/tmp/target-node$S1.log" | grep -iE 'reset|reserv' | head -n 5 | sed "s/^/  [node $S1 log] /"

step "teardown"
for p in $PORTALS; do logout "$p" >/dev/null 2>&1; done
cluster_stop
[ "$FAILED" = 0 ] || { dump_logs; exit 1; }
echo "failover: all checks passed"
