#!/bin/bash
# Tools/vm/setup.sh — prepare the host for the kernel-initiator VM harness.
#
# Installs the host packages the harness copies into the guest (if missing),
# downloads Debian's linux-image-amd64 kernel package (generic flavour) into
# .build-vm/cache, unpacks it into .build-vm/kernel and runs depmod on it.
#
# Exit status: 0 ready, 2 qemu (or another required package) could not be
# installed (test-vm.sh turns that into SKIPPED), 1 any other failure.
#
# Environment:
#   VM_BUILD_DIR   work dir (default: <repo>/.build-vm)
#   VM_NO_INSTALL  if set, never call apt-get install (only check)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${VM_BUILD_DIR:-$REPO/.build-vm}"
CACHE="$BUILD/cache"
KDIR="$BUILD/kernel"

log() { echo "[vm-setup] $*" >&2; }

# package -> a file that proves it is installed
declare -A NEED=(
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [busybox-static]=/bin/busybox
  [open-iscsi]=/usr/sbin/iscsid
  [multipath-tools]=/usr/sbin/multipathd
  [kpartx]=/usr/sbin/kpartx
  [dmsetup]=/usr/sbin/dmsetup
  [udev]=/usr/lib/udev/scsi_id
  [fio]=/usr/bin/fio
  [e2fsprogs]=/usr/sbin/mkfs.ext4
  [sg3-utils]=/usr/bin/sg_inq
  [cpio]=/usr/bin/cpio
  [kmod]=/usr/sbin/depmod
  [tgt]=/usr/sbin/tgtd
)

missing=()
for pkg in "${!NEED[@]}"; do
  [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done
# busybox (dynamic) may provide /bin/busybox too; we need the static one.
if [ -e /bin/busybox ] && ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
  if ! dpkg -s busybox-static >/dev/null 2>&1; then missing+=(busybox-static); fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ -n "${VM_NO_INSTALL:-}" ]; then
    log "missing packages: ${missing[*]} (VM_NO_INSTALL set)"; exit 2
  fi
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: ${missing[*]} and not root"; exit 2
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  mkdir -p "$BUILD"
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$BUILD/apt.log" 2>&1; then
    log "apt-get install failed (see $BUILD/apt.log)"
    [ -e /usr/bin/qemu-system-x86_64 ] || exit 2
    exit 1
  fi
fi
[ -e /usr/bin/qemu-system-x86_64 ] || { log "qemu-system-x86_64 not available"; exit 2; }

mkdir -p "$CACHE"

# Kernel: Debian's generic amd64 flavour. It has what the guest needs as
# modules (iscsi_tcp, dm-multipath, ext4) and SCSI device handlers
# (CONFIG_SCSI_DH, scsi_dh_alua: dm-multipath's "1 alua" hardware handler);
# the cloud flavour is built without them. A kernel unpacked without
# CONFIG_SCSI_DH (an older .build-vm) is replaced.
if [ -e "$KDIR/.ready" ] && ! grep -qx 'CONFIG_SCSI_DH=y' "$KDIR/boot/config-$(cat "$KDIR/.ready")" 2>/dev/null; then
  log "kernel $(cat "$KDIR/.ready") has no SCSI device handlers: replacing it"
  rm -f "$KDIR/.ready"
fi
if [ ! -e "$KDIR/.ready" ]; then
  cd "$CACHE"
  # linux-image-<abi>-amd64_<version>_amd64.deb (not -cloud-, -rt-, unsigned)
  pick() { ls linux-image-*-amd64_*.deb 2>/dev/null | grep -E '^linux-image-[0-9.]+-[0-9]+-amd64_' | tail -1 || true; }
  kpkg="$(pick)"
  if [ -z "$kpkg" ]; then
    dep="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')"
    if [ -z "$dep" ]; then
      apt-get update -qq >/dev/null 2>&1 || true
      dep="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')"
    fi
    [ -n "$dep" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
    log "downloading $dep"
    apt-get download -qq "$dep" >/dev/null 2>&1 || { log "apt-get download $dep failed"; exit 1; }
    kpkg="$(pick)"
  fi
  [ -n "$kpkg" ] || { log "no linux-image-*-amd64 package in $CACHE"; exit 1; }
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  log "unpacking $kpkg"
  dpkg -x "$kpkg" "$KDIR"
  kver="$(ls "$KDIR/lib/modules" | head -1)"
  depmod -b "$KDIR" "$kver"
  ln -sf "boot/vmlinuz-$kver" "$KDIR/vmlinuz"
  echo "$kver" > "$KDIR/.ready"
fi
log "kernel $(cat "$KDIR/.ready") ready in $KDIR"
