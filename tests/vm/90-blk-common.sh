# Sourced by tests/vm/9x-blk-*.test.sh (inside the test host): a copy of the busybox rootfs, and
# tests/vm/90-blk-vm.c built against the installed libkrun. Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
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
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# -k 10: krun_start_enter forwards SIGTERM to the guest's workload, so SIGTERM alone ends the run
# only if the guest acts on it; SIGKILL 10 s later bounds the run (2026-12-03's bench: a zkrun run
# that did not end held the test host until it was killed after 23 minutes). vm_limit: seconds
# before the SIGTERM (600; tests/bench/blk-guest.sh sets its own).
vm() { timeout -k 10 "${vm_limit:-600}" "$work/blk-vm" "$@" </dev/null 2>&1; }
# run_vm LINES ARGS...: `vm ARGS` in this shell, setting out (\r stripped) and rc; shows the
# last LINES lines of out.
run_vm() {
  local lines=$1
  shift
  out=$(vm "$@"); rc=$?
  out=$(tr -d '\r' <<<"$out"); echo "$out" | tail -"$lines"
}
# sums: w and r, the checksums the guest printed as "w=SUM FILE" and "r=SUM FILE" lines.
sums() { w=$(sed -n 's/^w=\([0-9a-f]*\) .*/\1/p' <<<"$out"); r=$(sed -n 's/^r=\([0-9a-f]*\) .*/\1/p' <<<"$out"); }
