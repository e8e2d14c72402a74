#!/usr/bin/env bash
# virtio-rng and the console's input port in a real guest (examples/chroot_vm, busybox root):
# the guest's hw_random uses virtio_rng and /dev/hwrng yields varying bytes; a pipe on the host's
# stdin reaches the guest through krun-stdin, and its end (EOF → PORT_OPEN 0) ends `cat` there.
source "$(dirname "$0")/../native/capi/vm-common.sh"
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
ROOTFS=${ZKRUN_CAPI_ROOTFS:-$(bin rootfs)}
[[ -x $ROOTFS/bin/sh ]] || { echo "FAIL: no busybox rootfs at '$ROOTFS' (scripts/mkrootfs.sh)"; exit 1; }
out=$( (printf 'line one\n'; sleep 1; printf 'line two\n') | timeout 300 "$(bin chroot_vm)" -c 1 -m 256 "$ROOTFS" /bin/sh -c '
  echo "rng=$(cat /sys/class/misc/hw_random/rng_current)"
  a=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")
  b=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")
  echo "hwrng a=$a"; echo "hwrng b=$b"
  while read -r l; do echo "got [$l]"; done; echo "stdin ended"' 2>&1); rc=$?
echo "$out"
a=$(sed -n 's/^hwrng a=//p' <<<"$out" | tr -d '\r'); b=$(sed -n 's/^hwrng b=//p' <<<"$out" | tr -d '\r')
expect "the workload exited 0 (got $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "the guest's hw_random is virtio_rng" 'grep -q "^rng=virtio_rng" <<<"$out"' "$out"
expect "/dev/hwrng gave 2 × 32 different bytes" '[[ ${#a} -eq 64 && ${#b} -eq 64 && $a != "$b" ]]' "$out"
expect "both stdin lines reached the guest, in order" 'grep -A1 "got \[line one\]" <<<"$out" | grep -q "got \[line two\]"' "$out"
expect "stdin EOF reached the guest (read loop ended)" 'grep -q "stdin ended" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
