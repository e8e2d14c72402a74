# Sourced by tests/vm/3x-fs-*.test.sh and 4x-harden-*.test.sh (inside the test host): a writable
# copy of the busybox rootfs in a temp dir, and tests/vm/$vm_prog.c (set before sourcing; default
# 30-fs-vm) built against the installed libkrun (vm-prog-build.sh), copied to $work/$vm_prog, run
# by `vm`. Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
ROOTFS_SRC=${ZKRUN_FS_ROOTFS:-$PWD/.tools/ts-rootfs}
[[ -e $ROOTFS_SRC/bin/busybox ]] || skip "no busybox rootfs at $ROOTFS_SRC (set ZKRUN_FS_ROOTFS)"
command -v cc >/dev/null || skip "no C compiler"
vm_prog=${vm_prog:-30-fs-vm}
work=$(mktemp -d "/tmp/zkrun-$vm_prog.XXXXXX")
# Tests may mount inside $work (a chroot's /proc, a small filesystem): unmounted before removal.
cleanup() { for m in "$work"/*/proc "$work"/small; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done; rm -rf "$work"; }
trap cleanup EXIT
cp -a "$ROOTFS_SRC" "$work/root"
# Built on the machine by 30-fs.prepare.sh (vm-prog-build.sh), or here when that did not run.
built_prog=$(tests/vm/vm-prog-build.sh "$vm_prog") && cp "$built_prog" "$work/$vm_prog" || { echo "building $vm_prog failed"; exit 1; }
# libkrun dlopens libkrunfw.so.5 by name: let the loader find ours (before any chroot).
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
vm() { timeout 300 "$work/$vm_prog" "$@" </dev/null 2>&1; }
