# Scenario "cluster" (TARGET=tesserad only): the distributed LUN under the
# Linux kernel initiator. Three tesserad nodes from Targets/cluster-node{1,2,3}.toml
# inside the guest, node i on 127.0.0.i:$PORT (store 900i, wire 910i, admin
# 808i on the same address), one LUN of $CLUSTER_SIZE_MB MiB with replicas 2
# and 8 MiB sub-units. SendTargets through node 2 lists all three portals;
# one session per portal; dm-multipath builds exactly one map with three
# paths, with the host side the project ships (Tools/host: the multipath
# device section and the open-iscsi timeouts). Implicit ALUA through every
# path: INQUIRY TPGS=1, VPD 0x83's target port group and relative port (node
# i = group i), REPORT TARGET PORT GROUPS the same through the three paths
# (groups 1, 2, 3, each active/optimized with one port), scsi_dh_alua
# attached; multipathd: prio 50 on every path, hardware handler "1 alua", one
# path group. A persistent reservation made through node 1 is listed and
# enforced through nodes 2 and 3, then released. Then fio --verify=crc32c
# through /dev/mapper/<wwid>; ext4 with sha256 checksums across a remount;
# every path (each node) reads the same bytes.
# Runs inside the guest as /test.sh; exit status 0 = pass.
. /vm/lib.sh
: "${FIO_MP_SIZE:=8M}"
N=3
P1="127.0.0.1:$PORT"; P2="127.0.0.2:$PORT"; P3="127.0.0.3:$PORT"
PORTALS="$P1 $P2 $P3"
EXPECT_SIZE_BYTES=$((CLUSTER_SIZE_MB * 1024 * 1024))   # cluster_start resizes the TOML's LUN

dump_logs() {
	for f in /tmp/target-node1.log /tmp/target-node2.log /tmp/target-node3.log /tmp/iscsid.log /tmp/multipathd.log; do
		[ -s "$f" ] || continue
		echo "----- tail $f"; tail -n 25 "$f"
	done
	echo "----- dmesg (tail)"; dmesg | tail -n 30
}

type cluster_start >/dev/null 2>&1 || die "target plugin has no cluster_start (TARGET=tesserad only)"

step "start $N tesserad nodes ($PORTALS)"
cluster_start "$N" || die "the cluster did not start"
IQN="$CLUSTER_IQN"   # lib.sh's login/logout/session_count use $IQN
ok "three nodes ready, target $IQN"
start_iscsid
start_udevd
mkdir -p /etc/multipath
multipathd -d -s >/tmp/multipathd.log 2>&1 &
MPD_PID=$!
wait_until 10 multipathd show status || die "multipathd did not start"

step "SendTargets through node 2 lists all three portals"
out=$(iscsiadm -m discovery -t sendtargets -p "$P2" 2>&1); echo "$out" | sed 's/^/  /'
i=0
for p in $PORTALS; do
	i=$((i + 1))
	echo "$out" | grep -q "^$p,$i $IQN\$" || fail "discovery via $P2 did not return '$p,$i $IQN'"
done
check "discovery lists exactly 3 portals for $IQN" [ "$(echo "$out" | grep -c " $IQN\$")" = 3 ]
# (already failed above if a portal is missing: discover through it directly so
# that the rest of the scenario still runs and reports)
for p in $PORTALS; do
	echo "$out" | grep -q "^$p," && continue
	echo "  note: discovering $p directly (not listed through $P2)"
	iscsiadm -m discovery -t sendtargets -p "$p" 2>&1 | sed 's/^/    /'
done

step "log in to all three nodes"
for p in $PORTALS; do
	login "$p" | sed 's/^/  /' || die "login to $p failed"
done
check "three sessions" [ "$(session_count)" = 3 ]
wait_until 30 have_disks 3 || die "expected 3 disks, have: $(disks | tr '\n' ' ')"
for sd in $(disks); do check_identity "$sd"; done
# the same logical unit behind every path: VPD 0x83's NAA designator
ids=$(for sd in $(disks); do /usr/lib/udev/scsi_id -g -u -d "/dev/$sd"; done | sort -u)
check "one WWID behind the three paths ($(echo $ids))" [ "$(echo "$ids" | grep -c .)" = 1 ]

step "dm-multipath builds exactly one map with three paths"
multipath_one_map 3 20
path_log | sed 's/^/  [kernel, paths] /'
dmesg -c >/dev/null

step "ALUA through each path: INQUIRY TPGS, VPD 0x83 port designators, REPORT TARGET PORT GROUPS"
# SD_i: the disk whose session goes to node i (127.0.0.i)
SD_1= SD_2= SD_3=
for sd in $(disks); do
	p=$(portal_of "$sd"); i=$(echo "$p" | sed -n 's/^127\.0\.0\.\([0-9]\):.*/\1/p')
	echo "  /dev/$sd: session to $p (node ${i:-?})"
	[ -n "$i" ] && eval "SD_$i=$sd"
done
[ -n "$SD_1" ] && [ -n "$SD_2" ] && [ -n "$SD_3" ] || die "cannot tell which disk is which node ('$SD_1' '$SD_2' '$SD_3')"
ok "node 1 /dev/$SD_1, node 2 /dev/$SD_2, node 3 /dev/$SD_3"
# num <0x..>: the number, or "none" if it is not one hex number
num() { case "$1" in ""|*[!0-9a-fA-Fx]*) echo none ;; *) echo $(($1)) ;; esac; }
for i in 1 2 3; do
	eval "sd=\$SD_$i"
	tpgs=$(sg_inq "/dev/$sd" 2>&1 | grep -o 'TPGS=[0-9]')
	check "node $i (/dev/$sd): INQUIRY $tpgs (implicit ALUA: TPGS=1)" [ "$tpgs" = "TPGS=1" ]
	sg_vpd -p di "/dev/$sd" 2>&1 | sed -n '/Target port:/,$p' | sed "s/^/  [vpd 0x83 $sd] /"
	set -- $(vpd_port "$sd") "" ""
	eval "RTP_$i=\$2"
	check "node $i: VPD 0x83 target port group ${1:-none} = 0x$i, relative target port ${2:-none}" \
		[ "$1" = "0x$i" -a -n "$2" ]
	sg_retry sg_rtpg --decode "/dev/$sd" > "/tmp/rtpg-$i"
	echo "  sg_rtpg --decode /dev/$sd (node $i):"; sed 's/^/    /' "/tmp/rtpg-$i"
	# the kernel's ALUA device handler attached to the path (what "1 alua" uses)
	dh=$(cat "/sys/block/$sd/device/dh_state" 2>/dev/null)
	as=$(cat "/sys/block/$sd/device/access_state" 2>/dev/null)
	check "node $i: scsi_dh_alua attached (dh_state '$dh'), access_state '$as' = active/optimized" \
		[ "$dh" = alua -a "$as" = active/optimized ]
done
same_rtpg() { cmp -s /tmp/rtpg-1 /tmp/rtpg-2 && cmp -s /tmp/rtpg-1 /tmp/rtpg-3; }
check "REPORT TARGET PORT GROUPS answers the same through the three paths" same_rtpg
rtpg_groups < /tmp/rtpg-1 > /tmp/rtpg-groups
sed 's/^/  group (id, state, ports): /' /tmp/rtpg-groups
check "three target port groups, ids 1, 2, 3" \
	[ "$(awk '{print $1}' /tmp/rtpg-groups | sort | tr '\n' ' ')" = "0x1 0x2 0x3 " ]
check "every group active/optimized (state 0x00)" \
	[ "$(grep -c . < /tmp/rtpg-groups)" = 3 -a "$(awk '$2 != "0x00"' /tmp/rtpg-groups | grep -c .)" = 0 ]
check "every group has one relative target port, all different" \
	[ "$(awk '$3 ~ /^0x[0-9a-fA-F]+$/ {print $3}' /tmp/rtpg-groups | sort -u | grep -c .)" = 3 ]
for i in 1 2 3; do
	eval "rtp=\$RTP_$i"
	listed=$(awk -v g="0x$i" '$1 == g {print $3}' /tmp/rtpg-groups)
	# VPD prints the port as 0x1, RTPG as 0x01: compare the numbers
	check "node $i: its port (VPD 0x83 ${rtp:-none}) is group $i's port in RTPG (${listed:-none})" \
		[ "$(num "$rtp")" != none -a "$(num "$rtp")" = "$(num "$listed")" ]
done
echo "  sg_rtpg --extended --decode /dev/$SD_1 (the implicit transition time):"
sg_retry sg_rtpg --extended --decode "/dev/$SD_1" | head -n 3 | sed 's/^/    /'

step "multipathd: the alua prio on every path, hardware handler 1 alua on the map"
prio50() { [ "$(multipathd show paths format '%d %p' | awk '$2 == 50' | grep -c .)" -ge 3 ]; }
wait_until 20 prio50
multipathd show paths format "%d %p %t %T %s" 2>&1 | sed 's/^/  /'
for i in 1 2 3; do
	eval "sd=\$SD_$i"
	row=$(multipathd show paths format "%d %p %t %T" | awk -v d="$sd" '$1 == d {print $2, $3, $4}')
	check "node $i (/dev/$sd): prio 50 (active/optimized), active, checker ready ($row)" \
		[ "$row" = "50 active ready" ]
done
multipathd show maps format "%n %h %N" 2>&1 | sed 's/^/  /'
hw=$(multipathd show maps format "%n %h" | awk -v m="$MAP" '$1 == m {$1 = ""; sub(/^ +/, ""); sub(/ +$/, ""); print}')
check "map $MAP: hardware handler '$hw' = '1 alua'" [ "$hw" = "1 alua" ]
one_group() {
	[ "$(multipath -ll | grep -c 'policy=')" = 1 ] &&
	multipath -ll | grep -q "policy='service-time 0' prio=50 status=active"
}
check "one path group (service-time 0, prio 50) holding the three paths" one_group

step "a persistent reservation through node 1's path, seen and enforced through nodes 2 and 3"
# logged <label> cmd...: runs cmd with its output in the log as "  [label] ..."; its status
logged() { local l="$1" out rc; shift; out=$(sg_retry "$@"); rc=$?; echo "$out" | sed "s/^/  [$l] /"; return $rc; }
# has <text> <pattern>...: every pattern matches a line of text
has() { local t="$1" pat; shift; for pat in "$@"; do echo "$t" | grep -q -- "$pat" || return 1; done; }
# write_block <dev>: one 4 KiB direct write at 16 MiB (before mkfs: nothing there yet)
write_block() { dd if=/dev/zero of="$1" bs=4096 count=1 seek=4096 oflag=direct conv=notrunc 2>/dev/null; }
# refused <sdX>: the write fails, and the kernel logged a reservation conflict for that disk
refused() {
	local hctl; hctl=$(basename "$(readlink -f "/sys/block/$1/device")")
	dmesg -c >/dev/null
	! write_block "/dev/$1" && dmesg | grep -q "$hctl: reservation conflict"
}
A=/dev/$SD_1
check "REGISTER key 0x1234 through node 1 ($A)" \
	logged register sg_persist --out --register --param-sark=0x1234 "$A"
check "RESERVE Write Exclusive (type 1) with key 0x1234 through node 1" \
	logged reserve sg_persist --out --reserve --param-rk=0x1234 --prout-type=1 "$A"
for i in 2 3; do
	eval "sd=/dev/\$SD_$i"
	keys=$(sg_retry sg_persist --in --read-keys "$sd"); echo "$keys" | sed "s/^/  [node $i read-keys] /"
	check "node $i ($sd): READ KEYS lists 0x1234" has "$keys" '^ *0x1234$'
	res=$(sg_retry sg_persist --in --read-reservation "$sd"); echo "$res" | sed "s/^/  [node $i read-reservation] /"
	check "node $i: READ RESERVATION Key=0x1234, type Write Exclusive" \
		has "$res" 'Key=0x1234' 'type: Write Exclusive$'
done
logged "node 2 read-full-status" sg_persist --in --read-full-status "/dev/$SD_2"
check "a write through the holder's path (node 1) succeeds" write_block "$A"
for i in 2 3; do
	eval "sd=\$SD_$i"
	check "a write through node $i (/dev/$sd) is refused with RESERVATION CONFLICT" refused "$sd"
	dmesg | grep -i 'reservation conflict' | sed 's/^/  [dmesg] /'
done
# clean up whatever happened above, so that the rest of the scenario can write
check "RELEASE through node 1" \
	logged release sg_persist --out --release --param-rk=0x1234 --prout-type=1 "$A"
check "unregister (REGISTER, service action key 0) through node 1" \
	logged unregister sg_persist --out --register --param-rk=0x1234 --param-sark=0 "$A"
for i in 2 3; do
	eval "sd=/dev/\$SD_$i"
	out=$(sg_retry sg_persist --in --read-keys "$sd"; sg_retry sg_persist --in --read-reservation "$sd")
	echo "$out" | grep -E 'PR generation|NO ' | sed "s/^/  [node $i after] /"
	check "node $i: no key and no reservation left" \
		has "$out" 'NO registered reservation keys' 'NO reservation held'
done
check "a write through node 2 succeeds again" write_block "/dev/$SD_2"
dmesg -c >/dev/null

step "fio verify through $DEV (randwrite then verified reads, direct, iodepth 32, $FIO_MP_SIZE)"
check "fio verify through the map (crc32c)" run_fio cluster "$DEV" --size="$FIO_MP_SIZE"
path_log | sed 's/^/  [kernel, paths, during fio] /'
grep -q 'err= 0' /tmp/fio-cluster.log || fail "fio reported an error (see /tmp/fio-cluster.log)"

step "ext4 on $DEV: mkfs, files with sha256, remount, verify, fsck"
mkfs.ext4 -q -F "$DEV" || die "mkfs.ext4 failed"
mkdir -p /mnt/t && mount -t ext4 "$DEV" /mnt/t || die "mount failed"
i=0
while [ $i -lt 8 ]; do
	dd if=/dev/urandom of=/mnt/t/f$i bs=64k count=$((4 + i * 8)) 2>/dev/null || fail "write f$i"
	i=$((i + 1))
done
mkdir -p /mnt/t/dir && cp /mnt/t/f3 /mnt/t/dir/copy
(cd /mnt/t && find . -type f | sort | xargs sha256sum) > /tmp/sums
ok "$(wc -l < /tmp/sums) files, $(du -sk /mnt/t | cut -f1) KiB"
sync
umount /mnt/t || die "umount failed"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 "$DEV" /mnt/t || die "remount failed"
check "checksums after remount ($(wc -l < /tmp/sums) files)" sh -c 'cd /mnt/t && sha256sum -c -s /tmp/sums'
umount /mnt/t
check "e2fsck -f clean" e2fsck -f -n "$DEV"

step "every path reads the same bytes (each node serves the whole LUN)"
# the first 32 MiB: ext4's metadata and files, four 8 MiB sub-units
sums=""
for sd in $(disks); do
	s=$(dd if="/dev/$sd" bs=1M count=32 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
	echo "  /dev/$sd: $s"
	sums="$sums $s"
done
check "the 3 paths read identical data" [ "$(echo $sums | tr ' ' '\n' | sort -u | grep -c .)" = 1 ]
if dmesg | grep -E 'dm-[0-9]+.*(I/O error|error)|Buffer I/O error|critical (medium|target) error' >/tmp/dmerr; then
	fail "I/O errors:"; sed 's/^/    /' /tmp/dmerr
else
	ok "no I/O error"
fi

step "teardown"
multipath -F >/dev/null 2>&1
for p in $PORTALS; do logout "$p" >/dev/null 2>&1; done
kill "$MPD_PID" 2>/dev/null
cluster_stop
[ "$FAILED" = 0 ] || { dump_logs; exit 1; }
echo "cluster: all checks passed"
