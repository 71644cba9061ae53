# Scenario "multipath": one target on two portals
# (127.0.0.1 and 127.0.0.2), one session each, dm-multipath on top, fio verify
# through the map while each path in turn is logged out and back in.
# Runs inside the guest as /test.sh; exit status 0 = pass.
. /vm/lib.sh
P1="127.0.0.1:$PORT"
P2="127.0.0.2:$PORT"
: "${FIO_MP_SIZE:=8M}"

step "start target ($P1, $P2)"
target_start "$P1" "$P2" || die "target did not start"
start_iscsid
start_udevd
mkdir -p /etc/multipath
multipathd -d -s >/tmp/multipathd.log 2>&1 &
MPD_PID=$!
wait_until 10 multipathd show status || die "multipathd did not start"
ok "multipathd running"

step "discovery on both portals, CHAP login on both"
for p in "$P1" "$P2"; do
	out=$(iscsiadm -m discovery -t sendtargets -p "$p" 2>&1); echo "$out" | sed 's/^/  /'
	echo "$out" | grep -q "^$p,[0-9]* $IQN\$" || die "discovery via $p did not return $p $IQN"
done
for p in "$P1" "$P2"; do
	chap "$p" "$CHAP_SECRET" && login "$p" | sed 's/^/  /' || die "login to $p failed"
done
check "two sessions" [ "$(session_count)" = 2 ]
wait_until 30 have_disks 2 || die "expected 2 disks, have: $(disks | tr '\n' ' ')"
for sd in $(disks); do check_identity "$sd"; done

step "multipath builds exactly one map"
multipath_one_map 2 15

step "fio verify through $DEV while each path is logged out and back in"
dmesg -c >/dev/null
# fio runs back to back (each: $FIO_MP_SIZE of random writes, then verified
# reads) until the path cycling below is over; the first failure stops it.
rm -f /tmp/fio-stop /tmp/fio-rc
(
	n=0
	while [ ! -e /tmp/fio-stop ]; do
		n=$((n + 1))
		run_fio multipath "$DEV" --size="$FIO_MP_SIZE" > /tmp/fio-mp.out 2>&1
		rc=$?
		grep -E '\] +(read|write): ' /tmp/fio-mp.out | sed 's/.*\] *//' |
			sed "s/^/  [fio run $n, measured under TCG emulation] /"
		[ "$rc" != 0 ] || grep -q 'err= 0' /tmp/fio-multipath.log || rc=1
		if [ "$rc" != 0 ]; then cat /tmp/fio-mp.out; echo "$rc" > /tmp/fio-rc; exit "$rc"; fi
	done
	echo "  fio: $n verified runs"
	echo 0 > /tmp/fio-rc
) &
FIO_PID=$!
for p in "$P1" "$P2"; do
	sleep 3
	kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended before $p was logged out"
	logout "$p" | sed 's/^/  /' || fail "logout $p"
	check "one session left" [ "$(session_count)" = 1 ]
	wait_until 20 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = 1 ]" ||
		fail "map did not drop to one path"
	ok "[$(now)s] map runs on one path"
	sleep 3
	login "$p" | sed 's/^/  /' || fail "re-login $p"
	wait_until 30 sh -c "[ \$(multipath -ll 2>/dev/null | grep -c 'active ready running') = 2 ]" ||
		fail "path $p was not reinstated"
	ok "[$(now)s] path $p back, $(active_paths) active paths"
	kill -0 "$FIO_PID" 2>/dev/null || fail "fio ended before $p was reinstated"
done
touch /tmp/fio-stop
wait "$FIO_PID"
FIO_RC=$(cat /tmp/fio-rc 2>/dev/null || echo missing)
check "fio verify through the map, every run err=0 (status $FIO_RC)" [ "$FIO_RC" = 0 ]
if dmesg | grep -E 'dm-[0-9]+.*(I/O error|error)|Buffer I/O error on dev dm' >/tmp/dmerr; then
	fail "I/O errors on the multipath device:"; sed 's/^/    /' /tmp/dmerr
else
	ok "no I/O error on the multipath device"
fi
echo "  path events (dmesg):"; dmesg | grep -E 'multipath|Failing path|reinstat' | tail -n 8 | sed 's/^/    /'
multipath -ll 2>&1 | sed 's/^/  /'

step "teardown"
multipath -F >/dev/null 2>&1
for p in "$P1" "$P2"; do logout "$p" >/dev/null 2>&1; done
kill "$MPD_PID" 2>/dev/null
target_stop
[ "$FAILED" = 0 ] || { dump_logs; exit 1; }
echo "multipath: all checks passed"
