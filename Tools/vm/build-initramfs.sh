#!/bin/bash
# Tools/vm/build-initramfs.sh — assemble the guest root (an initramfs).
#
# Output: .build-vm/initramfs-<TARGET>.cpio (uncompressed newc; uncompressed is
# faster to unpack under TCG than gzip). run.sh appends a second tiny cpio
# holding the scenario as /test.sh, so this image is built once per target.
#
# Contents: busybox-static applets; host binaries (+ their shared libraries,
# found with ldd) for open-iscsi, multipath-tools, udevd, e2fsprogs, fio,
# sg3-utils and the target program; the kernel modules for iSCSI/SCSI/dm,
# scsi_dh_alua and ext4; /etc from Tools/vm/guest/etc plus Tools/host's
# multipath device section and open-iscsi settings;
# /init (Tools/vm/guest/init), guest helpers (/vm/lib.sh) and the target
# plugin (/vm/target.sh, from Tools/vm/targets/<TARGET>.sh); for tesserad also
# Targets/cluster-node*.toml as /vm/cluster/ (the cluster scenario).
#
# Environment:
#   TARGET        tgt (default) | tesserad
#   TESSERAD_BIN  path to the tesserad executable (TARGET=tesserad)
#   VM_BUILD_DIR  work dir (default <repo>/.build-vm)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${VM_BUILD_DIR:-$REPO/.build-vm}"
KDIR="$BUILD/kernel"
TARGET="${TARGET:-tgt}"
OUT="$BUILD/initramfs-$TARGET.cpio"
STAGE="$BUILD/root-$TARGET"
SWIFT_LIBDIR="${SWIFT_LIBDIR:-/opt/swift/usr/lib/swift/linux}"

log() { echo "[vm-build] $*" >&2; }

[ -e "$KDIR/.ready" ] || { log "kernel missing: run Tools/vm/setup.sh"; exit 1; }
KVER="$(cat "$KDIR/.ready")"
[ -e "$HERE/targets/$TARGET.sh" ] || { log "unknown TARGET=$TARGET (no targets/$TARGET.sh)"; exit 1; }

rm -rf "$STAGE"
mkdir -p "$STAGE"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,tmp,run,root,mnt,vm,var}
ln -s usr/bin "$STAGE/bin"; ln -s usr/sbin "$STAGE/sbin"
ln -s usr/lib "$STAGE/lib"; ln -s usr/lib64 "$STAGE/lib64"
ln -s ../run "$STAGE/var/run"; ln -s ../run/lock "$STAGE/var/lock"
mkdir -p "$STAGE/var/lib" "$STAGE/var/log"

# copy one file to the same absolute path in the stage, dereferencing links
put() {
  local src="$1" dst="$STAGE${2:-$1}"
  [ -e "$dst" ] && return 0
  mkdir -p "$(dirname "$dst")"
  cp -L "$src" "$dst"
}

# copy a binary and every shared library ldd resolves for it
LDD_PATH="/opt/swift/usr/lib/swift/linux"
add_bin() {
  local b="$1" lib
  [ -e "$b" ] || { log "missing binary $b"; return 1; }
  put "$b"
  while read -r lib; do
    [ -n "$lib" ] && put "$lib"
  done < <(LD_LIBRARY_PATH="$LDD_PATH" ldd "$b" 2>/dev/null \
            | awk '/=> \//{print $3} /^[ \t]*\/.*ld-linux/{print $1}')
}

BINS=(
  /usr/sbin/iscsiadm /usr/sbin/iscsid
  /usr/sbin/multipath /usr/sbin/multipathd /usr/sbin/dmsetup /usr/sbin/kpartx
  /usr/bin/udevadm /usr/lib/udev/scsi_id
  /usr/sbin/mkfs.ext4 /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/fsck.ext4
  /usr/bin/fio
  /usr/bin/sg_inq /usr/bin/sg_persist /usr/bin/sg_readcap /usr/bin/sg_vpd
  /usr/bin/sg_turs /usr/bin/sg_luns /usr/bin/sg_rtpg /usr/bin/sg_raw /usr/bin/sg_reset
)
case "$TARGET" in
  tgt) BINS+=(/usr/sbin/tgtd /usr/sbin/tgtadm) ;;
  tesserad)
    [ -n "${TESSERAD_BIN:-}" ] && [ -x "$TESSERAD_BIN" ] \
      || { log "TARGET=tesserad needs TESSERAD_BIN=/path/to/tesserad"; exit 1; }
    put "$TESSERAD_BIN" /usr/bin/tesserad
    add_bin "$TESSERAD_BIN"
    # ldd finds the Swift runtime through the binary's RUNPATH; anything
    # dlopen'ed must be named in TESSERAD_EXTRA_LIBS (space separated paths)
    for f in ${TESSERAD_EXTRA_LIBS:-}; do add_bin "$f"; done
    ;;
esac
for b in "${BINS[@]}"; do add_bin "$b"; done
ln -sf ../bin/udevadm "$STAGE/usr/lib/udev/systemd-udevd" 2>/dev/null || true
ln -sf ../../bin/udevadm "$STAGE/usr/lib/systemd/systemd-udevd" 2>/dev/null \
  || { mkdir -p "$STAGE/usr/lib/systemd"; ln -sf ../../bin/udevadm "$STAGE/usr/lib/systemd/systemd-udevd"; }

# multipath plugins (checkers, prioritizers) are dlopen'ed
for f in /usr/lib/multipath/*.so; do add_bin "$f"; done

# udev rules that matter for SCSI disks and device-mapper multipath
mkdir -p "$STAGE/usr/lib/udev/rules.d" "$STAGE/etc/udev/rules.d"
for r in 50-udev-default 55-dm 56-dm-mpath 60-block 60-persistent-storage \
         60-persistent-storage-dm 60-multipath 95-dm-notify 10-dm 13-dm-disk \
         95-dm-notify 11-dm-mpath 99-systemd; do
  [ -e "/usr/lib/udev/rules.d/$r.rules" ] && put "/usr/lib/udev/rules.d/$r.rules"
done
[ -e /etc/udev/udev.conf ] && put /etc/udev/udev.conf

# busybox applets as symlinks wherever a host binary is not already present
put /usr/bin/busybox /usr/bin/busybox 2>/dev/null || put /bin/busybox /usr/bin/busybox
for a in $(/bin/busybox --list); do
  [ -e "$STAGE/usr/bin/$a" ] || [ -e "$STAGE/usr/sbin/$a" ] || ln -s busybox "$STAGE/usr/bin/$a"
done
# the kernel's request_module() runs /sbin/modprobe
[ -e "$STAGE/usr/sbin/modprobe" ] || ln -s ../bin/busybox "$STAGE/usr/sbin/modprobe"

# kernel modules (with dependencies) + index; guest/init loads them in this
# order. scsi_dh_alua before any disk appears, so that it attaches to each
# path when the disk is scanned (dm-multipath's "1 alua" hardware handler);
# ext4 and crc32c are modules in Debian's generic kernel.
MODULES="scsi_dh_alua iscsi_tcp sd_mod sg dm_multipath dm_round_robin dm_service_time dm_queue_length crc32c_generic crc32c_intel ext4"
for m in $MODULES; do
  modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' |
    while read -r ko; do
      rel="/usr/lib/modules/${ko#*/lib/modules/}"   # merged-/usr layout
      mkdir -p "$(dirname "$STAGE$rel")"; cp "$ko" "$STAGE$rel"
    done || { log "module $m not found"; exit 1; }
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
  [ -e "$KDIR/lib/modules/$KVER/$f" ] && cp "$KDIR/lib/modules/$KVER/$f" "$STAGE/usr/lib/modules/$KVER/"
done
depmod -b "$STAGE" "$KVER"
echo "$MODULES" > "$STAGE/vm/modules"

# dynamic linker cache
cp /etc/ld.so.conf "$STAGE/etc/"; cp -r /etc/ld.so.conf.d "$STAGE/etc/"
echo "/usr/lib" > "$STAGE/etc/ld.so.conf.d/00-usrlib.conf"
[ "$TARGET" = tesserad ] && echo "$SWIFT_LIBDIR" > "$STAGE/etc/ld.so.conf.d/swift.conf"
ldconfig -r "$STAGE" 2>/dev/null || log "ldconfig -r failed (continuing)"

# minimal /etc
echo "root:x:0:0:root:/root:/bin/sh" > "$STAGE/etc/passwd"
echo "root:x:0:" > "$STAGE/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$STAGE/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$STAGE/etc/hosts"
echo "tessera-vm" > "$STAGE/etc/hostname"
cp -r "$HERE/guest/etc/." "$STAGE/etc/"
# the host side the project ships (Tools/host), exactly as a host installs it:
# the multipath device section in conf.d, the open-iscsi settings appended to
# the harness's iscsid.conf (a later line wins there)
install -D -m 0644 "$REPO/Tools/host/multipath-tessera.conf" "$STAGE/etc/multipath/conf.d/tessera.conf"
{ echo; echo "# ---- Tools/host/iscsid-tessera.conf"; cat "$REPO/Tools/host/iscsid-tessera.conf"; } >> "$STAGE/etc/iscsi/iscsid.conf"

# guest scripts
install -m 0755 "$HERE/guest/init" "$STAGE/init"
install -m 0644 "$HERE/guest/lib.sh" "$STAGE/vm/lib.sh"
install -m 0644 "$HERE/targets/$TARGET.sh" "$STAGE/vm/target.sh"
[ -n "${TARGET_CONFIG:-}" ] && install -m 0644 "$TARGET_CONFIG" "$STAGE/vm/target.conf"
# the cluster scenario's nodes: the repository's three-node TOMLs (targets/tesserad.sh
# moves node i onto 127.0.0.i); CLUSTER_CONFIG_DIR overrides where they come from
if [ "$TARGET" = tesserad ]; then
  mkdir -p "$STAGE/vm/cluster"
  for f in "${CLUSTER_CONFIG_DIR:-$REPO/Targets}"/cluster-node*.toml; do
    [ -e "$f" ] && install -m 0644 "$f" "$STAGE/vm/cluster/$(basename "$f")"
  done
fi
# host settings handed to the guest scripts (see guest/lib.sh, targets/*.sh)
: > "$STAGE/vm/target.env"
for v in TESSERAD_ARGS TESSERAD_LOG_LEVEL IQN CHAP_USER CHAP_SECRET WRONG_SECRET SIZE_MB VENDOR PRODUCT SERIAL PORT \
         EXPECT_VENDOR EXPECT_PRODUCT EXPECT_SERIAL EXPECT_SIZE_BYTES FIO_SIZE FIO_MP_SIZE FIO_FO_SIZE FAILOVER_PARTS CLUSTER_SIZE_MB CLUSTER_LEASE; do
  if [ -n "${!v+x}" ]; then
    printf "export %s='%s'\n" "$v" "$(printf '%s' "${!v}" | sed "s/'/'\\\\''/g")" >> "$STAGE/vm/target.env"
  fi
done

(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "initramfs $OUT ($(du -h "$OUT" | cut -f1), target=$TARGET, kernel=$KVER)"
