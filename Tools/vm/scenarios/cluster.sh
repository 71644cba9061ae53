# Scenario "cluster" (TARGET=tesserad only): the distributed LUN under the
# Linux kernel initiator. Three tesserad nodes from Targets/cluster-node{1,2,3}.toml
# inside the guest, node i on 127.0.0.i:$PORT (store 900i, wire 910i, admin
# 808i on the same address), one LUN of $CLUSTER_SIZE_MB MiB with replicas 2
# and 8 MiB sub-units. SendTargets through node 2 lists all three portals;
# one session per portal; dm-multipath builds exactly one map with three
# paths; fio --verify=crc32c through /dev/mapper/<wwid>; ext4 with sha256
# checksums across a remount; every path (each node) reads the same bytes.
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
dmesg -c >/dev/null

step "fio verify through $DEV (randwrite then verified reads, direct, iodepth 32, $FIO_MP_SIZE)"
check "fio verify through the map (crc32c)" run_fio cluster "$DEV" --size="$FIO_MP_SIZE"
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
