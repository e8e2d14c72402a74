# Sourced by tests/vm/9x-blk-*.test.sh (inside the test host): a copy of the busybox rootfs, and
# tests/vm/90-blk-vm.c built against the installed libkrun. Exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
prefix=$PWD/zig-out
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || skip "zig-out/lib/libkrun.so.1 not built (zig build)"
[[ -e $prefix/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
ROOTFS_SRC=${ZKRUN_FS_ROOTFS:-$PWD/.tools/ts-rootfs}
[[ -e $ROOTFS_SRC/bin/busybox ]] || skip "no busybox rootfs at $ROOTFS_SRC (set ZKRUN_FS_ROOTFS)"
command -v cc >/dev/null || skip "no C compiler"
for tool in mkfs.ext4 e2fsck debugfs; do
  command -v $tool >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v $tool >/dev/null || skip "no $tool (e2fsprogs)"
done
work=$(mktemp -d /tmp/zkrun-blk-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$ROOTFS_SRC" "$work/root"
# Built on the machine by 90-blk.prepare.sh (vm-prog-build.sh), or here when that did not run.
built_prog=$(tests/vm/vm-prog-build.sh 90-blk-vm) && cp "$built_prog" "$work/blk-vm" || { echo "building blk-vm failed"; exit 1; }
fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); [[ -n ${3:-} ]] && echo "$3" | tail -40 | sed 's/^/     | /'; fi
}
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
vm() { timeout 600 "$work/blk-vm" "$@" </dev/null 2>&1; }
