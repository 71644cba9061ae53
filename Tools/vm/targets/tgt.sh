# /vm/target.sh for TARGET=tgt — Debian's tgtd as the reference target.
# Interface (used by /vm/lib.sh and the scenarios):
#   target_start <ip:port>...   start the target listening on those portals,
#                               one target $IQN, CHAP $CHAP_USER/$CHAP_SECRET,
#                               one disk LU of $SIZE_MB MiB on /tmp (tmpfs)
#                               reporting $VENDOR/$PRODUCT/$SERIAL
#   target_stop
# Note: tgt puts every portal in the same TPG (tag 1); tgt's LUN 0 is its
# controller LU (peripheral type 0x0c), the disk is LUN 1.

tgt() { tgtadm --lld iscsi "$@"; }

target_start() {
	local first="$1" p
	truncate -s "${SIZE_MB}M" /tmp/lun0.img || return 1
	tgtd -f --iscsi "portal=$first" >/tmp/target.log 2>&1 &
	TARGET_PID=$!
	wait_until 10 tgt --mode target --op show || { echo "tgtd did not start"; return 1; }
	shift
	for p in "$@"; do
		tgt --mode portal --op new --param "portal=$p" || return 1
	done
	tgt --mode target --op new --tid 1 --targetname "$IQN" &&
	tgt --mode logicalunit --op new --tid 1 --lun 1 --backing-store /tmp/lun0.img &&
	tgt --mode logicalunit --op update --tid 1 --lun 1 \
	    --params "vendor_id=$VENDOR,product_id=$PRODUCT,product_rev=0001,scsi_sn=$SERIAL" &&
	tgt --mode account --op new --user "$CHAP_USER" --password "$CHAP_SECRET" &&
	tgt --mode account --op bind --tid 1 --user "$CHAP_USER" &&
	tgt --mode target --op bind --tid 1 --initiator-address ALL || return 1
	tgt --mode portal --op show | sed 's/^/  tgt /'
}

target_stop() {
	[ -n "${TARGET_PID:-}" ] || return 0
	# tgtd ignores SIGTERM while it has targets: take it down through tgtadm
	tgt --mode sys --op update --name State -v offline >/dev/null 2>&1
	tgt --mode target --op delete --force --tid 1 >/dev/null 2>&1
	tgt --mode sys --op delete >/dev/null 2>&1
	wait_until 5 sh -c "! kill -0 $TARGET_PID" || kill -9 "$TARGET_PID" 2>/dev/null
	wait "$TARGET_PID" 2>/dev/null
	TARGET_PID=
}
