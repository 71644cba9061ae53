# Scenario "single": one portal, CHAP, the kernel initiator end to end.
# Runs inside the guest as /test.sh; exit status 0 = pass.
. /vm/lib.sh
P="127.0.0.1:$PORT"

step "start target ($P)"
target_start "$P" || die "target did not start"
start_iscsid
start_udevd

step "discovery (sendtargets)"
out=$(iscsiadm -m discovery -t sendtargets -p "$P" 2>&1); echo "$out" | sed 's/^/  /'
echo "$out" | grep -q "^$P,[0-9]* $IQN\$" || die "discovery did not return $P $IQN"
ok "discovery lists $IQN at $P"

step "login with a wrong CHAP secret is refused"
chap "$P" "$WRONG_SECRET" || die "cannot set node record"
login "$P" >/tmp/badlogin.log 2>&1
rc=$?
sed 's/^/  /' /tmp/badlogin.log | tail -n 2
if [ "$rc" = 0 ]; then
	fail "login with a wrong secret succeeded"; logout "$P" >/dev/null 2>&1
else
	# iscsiadm exit 24 = ISCSI_ERR_LOGIN_AUTH_FAILED (Login status 0201h)
	check "refused as an authentication failure (iscsiadm exit $rc, want 24)" [ "$rc" = 24 ]
	check "no session after the refused login" [ "$(session_count)" = 0 ]
fi

step "login with CHAP"
chap "$P" "$CHAP_SECRET" && login "$P" | sed 's/^/  /' || die "login failed"
wait_until 30 have_disks 1 || die "no disk appeared"
SD=$(disks | head -n1)
check_identity "$SD"
DEV="/dev/$SD"

step "fio verify on $DEV (randwrite then verified reads, direct, iodepth 32, $FIO_SIZE)"
check "fio verify" run_fio single "$DEV"

step "ext4: mkfs, write, remount, verify, fsck"
mkfs.ext4 -q -F "$DEV" || die "mkfs.ext4 failed"
mkdir -p /mnt/t && mount -t ext4 "$DEV" /mnt/t || die "mount failed"
i=0
while [ $i -lt 8 ]; do
	dd if=/dev/urandom of=/mnt/t/f$i bs=64k count=$((4 + i * 4)) 2>/dev/null || fail "write f$i"
	i=$((i + 1))
done
mkdir -p /mnt/t/dir && cp /mnt/t/f1 /mnt/t/dir/copy
(cd /mnt/t && find . -type f | sort | xargs sha256sum) > /tmp/sums
sync
umount /mnt/t || die "umount failed"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 "$DEV" /mnt/t || die "remount failed"
check "checksums after remount ($(wc -l < /tmp/sums) files)" sh -c 'cd /mnt/t && sha256sum -c -s /tmp/sums'
umount /mnt/t
check "e2fsck -f clean" e2fsck -f -n "$DEV"

step "logout, login again, data still there"
logout "$P" | sed 's/^/  /' || fail "logout failed"
check "no session after logout" [ "$(session_count)" = 0 ]
wait_until 10 sh -c "[ ! -e /sys/block/$SD ]" || fail "$SD still present after logout"
login "$P" | sed 's/^/  /' || die "second login failed"
wait_until 30 have_disks 1 || die "no disk after the second login"
SD=$(disks | head -n1); DEV="/dev/$SD"
mount -t ext4 "$DEV" /mnt/t || die "mount after re-login failed"
check "checksums after re-login" sh -c 'cd /mnt/t && sha256sum -c -s /tmp/sums'
umount /mnt/t
check "e2fsck -f clean after re-login" e2fsck -f -n "$DEV"
logout "$P" >/dev/null

target_stop
[ "$FAILED" = 0 ] || { dump_logs; exit 1; }
echo "single: all checks passed"
