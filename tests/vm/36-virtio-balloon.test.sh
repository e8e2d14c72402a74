#!/usr/bin/env bash
# virtio-balloon free page reporting end to end: a guest (examples/chroot_vm, busybox root on
# virtio-fs) fills 160 MiB of tmpfs, frees it and idles; Linux reports the free page blocks on
# the balloon's reporting queue, the VMM madvises them away, and the VMM process's RSS (sampled
# from the host side) falls back by most of what the guest had touched.
source "$(dirname "$0")/../native/capi/vm-common.sh"
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
ROOTFS=${ZKRUN_CAPI_ROOTFS:-$(bin rootfs)}
[[ -x $ROOTFS/bin/sh ]] || { echo "FAIL: no busybox rootfs at '$ROOTFS' (scripts/mkrootfs.sh)"; exit 1; }
log=$work/balloon.log
# devtmpfs is guest memory only (nothing lands in the shared rootfs).
"$(bin chroot_vm)" -c 1 -m 512 "$ROOTFS" /bin/sh -c '
  mkdir /dev/b && mount -t tmpfs -o size=200m none /dev/b || exit 9
  dd if=/dev/zero of=/dev/b/fill bs=1M count=160 2>/dev/null; echo filled
  rm /dev/b/fill; echo freed; sleep 12; echo done' >"$log" 2>&1 </dev/null &
pid=$!
max=0 after=
while kill -0 $pid 2>/dev/null; do
  rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status 2>/dev/null)
  if [[ -n $rss ]]; then
    ((rss > max)) && max=$rss
    grep -q freed "$log" && { [[ -z $after || $rss -lt $after ]] && after=$rss; }
  fi
  sleep 0.5
done
wait $pid; rc=$?
out=$(cat "$log")
echo "VMM RSS: peak ${max} kB, lowest after the guest freed its memory ${after:-?} kB"
expect "the workload ran and exited 0 (got $rc)" '[[ $rc -eq 0 ]] && grep -q done <<<"$out"' "$out"
expect "peak RSS shows the 160 MiB fill (${max} kB)" '[[ $max -gt 163840 ]]' "$out"
expect "RSS fell by at least 96 MiB once freed pages were reported (${max} → ${after:-?} kB)" \
  '[[ -n $after && $((max - after)) -gt 98304 ]]' "$out"
[[ $fails -eq 0 ]]
