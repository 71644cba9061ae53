#!/usr/bin/env bash
# Loopback stage: a real tesserad on 127.0.0.1:3290 and real clients against it.
#   1. tesserad with no arguments: iscsi-ls lists the target and LUN, iscsi-inq
#      and iscsi-readcapacity16 answer, qemu-img converts 256 MiB of random data
#      into the LUN and back byte-identical.
#   2. ACLs hide a target and refuse a stranger's login.
#   3. The configured INQUIRY identity.
#   4. CHAP (one-way, mutual, wrong secret) with libiscsi.
#   5. iscsi-test-cu Read/Write suites with CRC32C digests and through mutual CHAP
#      (the whole suite runs in Tools/conformance/iscsi-test-all.sh).
#   6. hostile input while a good session keeps working.
# Prints a line per check and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
source Tools/env.sh
WORK=$PWD/.build/loopback
rm -rf "$WORK"; mkdir -p "$WORK"
BIN=${TESSERA_BIN_DIR:-$(swift build --show-bin-path)}/tesserad
[ -x "$BIN" ] || swift build --product tesserad
sed "s#DATA_DIR#$WORK#" Tools/conformance/loopback.toml > "$WORK/tesserad.toml"

PORTAL=127.0.0.1:3290
T=iqn.2026-11.dev.tessera:conformance
URL=iscsi://$PORTAL/$T/0
pass=0 fail=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@" >>"$WORK/checks.log" 2>&1; then echo "PASS $name"; pass=$((pass + 1))
  else echo "FAIL $name (see $WORK/checks.log)"; fail=$((fail + 1)); fi
}
fails() { ! "$@"; }

# --- phase 1: tesserad with no arguments (the built-in default) --------------
DEFAULT_URL=iscsi://127.0.0.1/iqn.2026-11.dev.tessera:default/0
mkdir -p "$WORK/default"
(cd "$WORK/default" && exec "$BIN") >"$WORK/default.log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null' EXIT
for _ in $(seq 100); do iscsi-inq "$DEFAULT_URL" >/dev/null 2>&1 && break; sleep 0.2; done
check "default: iscsi-ls -s lists the target and its LUN" \
  bash -c "iscsi-ls -s iscsi://127.0.0.1 | tee /dev/stderr | grep -q 'Target:iqn.2026-11.dev.tessera:default Portal:127.0.0.1:3260,1' &&
           iscsi-ls -s iscsi://127.0.0.1 | grep -q 'Lun:0 *Type:DIRECT_ACCESS (Size:1023M)'"
check "default: iscsi-inq answers" bash -c "iscsi-inq $DEFAULT_URL | tee /dev/stderr | grep -q 'Peripheral Device Type:DIRECT_ACCESS'"
check "default: iscsi-readcapacity16 answers" \
  bash -c "iscsi-readcapacity16 $DEFAULT_URL | tee /dev/stderr | grep -q 'Total size:1073741824'"
check "default: 1 GiB sparse backing file in ./tessera-data" test -f "$WORK/default/tessera-data/lun0.img"
if command -v qemu-img >/dev/null; then
  head -c $((256 * 1024 * 1024)) /dev/urandom > "$WORK/random.img"
  check "default: qemu-img convert 256 MiB into the LUN and back is byte-identical" bash -c "
    qemu-img convert -n -f raw -O raw '$WORK/random.img' '$DEFAULT_URL' &&
    qemu-img convert -f raw -O raw '$DEFAULT_URL' '$WORK/back.img' &&
    cmp -n $((256 * 1024 * 1024)) '$WORK/random.img' '$WORK/back.img'"
  rm -f "$WORK/random.img" "$WORK/back.img"
fi
kill -TERM $DPID; wait $DPID
check "default: tesserad exits 0 on SIGTERM" test $? -eq 0

# --- phase 2: the conformance configuration ----------------------------------
"$BIN" --config "$WORK/tesserad.toml" >"$WORK/tesserad.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do iscsi-inq "$URL" >/dev/null 2>&1 && break; sleep 0.2; done

check "ACL: a target is hidden from an initiator not in its ACL" \
  bash -c "! iscsi-ls -i iqn.2026-11.dev.tessera:stranger iscsi://$PORTAL | grep -q ':acl'"
check "ACL: the allowed initiator sees and reaches it" \
  bash -c "iscsi-ls -i iqn.2026-11.dev.tessera:allowed iscsi://$PORTAL | grep -q ':acl' && iscsi-inq -i iqn.2026-11.dev.tessera:allowed iscsi://$PORTAL/iqn.2026-11.dev.tessera:acl/0"
check "ACL: a stranger cannot log in" fails iscsi-inq -i iqn.2026-11.dev.tessera:stranger iscsi://$PORTAL/iqn.2026-11.dev.tessera:acl/0
check "configured vendor/product/serial in INQUIRY" \
  bash -c "iscsi-inq $URL | grep -q 'Vendor:TESSERA' && iscsi-inq -e 1 -c 128 $URL | tee /dev/stderr | grep -q 'TSR-CONF-0'"
check "iscsi-inq VPD 0x83 has the NAA designator" bash -c "iscsi-inq -e 1 -c 131 $URL | tee /dev/stderr | grep -qi naa"

CHAP_URL=iscsi://tessera-user%initiator-secret-1@$PORTAL/iqn.2026-11.dev.tessera:chap/0
check "CHAP: one-way login with the right secret" iscsi-inq "$CHAP_URL"
check "CHAP: wrong secret is refused" fails iscsi-inq "iscsi://tessera-user%wrong-secret-999@$PORTAL/iqn.2026-11.dev.tessera:chap/0"
check "CHAP: no credentials is refused" fails iscsi-inq "iscsi://$PORTAL/iqn.2026-11.dev.tessera:chap/0"
check "CHAP: mutual login" env LIBISCSI_CHAP_TARGET_USERNAME=tessera-target LIBISCSI_CHAP_TARGET_PASSWORD=target-secret-22 iscsi-inq "$CHAP_URL"
check "CHAP: mutual login with a wrong target secret is refused" fails env LIBISCSI_CHAP_TARGET_USERNAME=tessera-target LIBISCSI_CHAP_TARGET_PASSWORD=not-the-secret iscsi-inq "$CHAP_URL"

check "iscsi-test-cu Read10/Write10 with HeaderDigest and DataDigest CRC32C" python3 Tools/conformance/iscsi_test_cu.py \
  --url "$URL?header_digest=crc32c" --expected Tools/conformance/expected.txt --suite Read10 --suite Write10 \
  --label digests --log "$WORK/iscsi-test-cu-digest.log"
check "iscsi-test-cu Inquiry/Read10 through mutual CHAP" env LIBISCSI_CHAP_TARGET_USERNAME=tessera-target \
  LIBISCSI_CHAP_TARGET_PASSWORD=target-secret-22 python3 Tools/conformance/iscsi_test_cu.py --url "$CHAP_URL" \
  --expected Tools/conformance/expected.txt --suite Inquiry --suite Read10 --label chap --log "$WORK/iscsi-test-cu-chap.log"
check "hostile input" timeout 300 python3 Tools/hostile/hostile_input.py --port 3290 --target "$T"
check "tesserad still running" kill -0 $PID

kill -TERM $PID; for _ in $(seq 50); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
check "tesserad exits on SIGTERM" fails kill -0 $PID
echo "loopback: $pass passed, $fail failed"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
