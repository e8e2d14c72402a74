#!/usr/bin/env bash
# libkrunfw is found no later than krun_create_ctx (issue 10 item 9): a client that creates the
# context, or only loads libkrun.so.1 (crun 1.8.1), on the host and then chroots into a
# directory without libkrunfw still starts a VM (capi/create_chroot.c). Needs root (chroot,
# mknod, a private mount namespace for /proc).
source "$(dirname "$0")/capi/lib.sh"
[[ -e $prefix/lib/libkrunfw.so.5 ]] || { echo "FAIL: $prefix/lib/libkrunfw.so.5 is not built"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "FAIL: needs root (chroot, mknod)"; exit 1; }
[[ -c /dev/kvm ]] || { echo "FAIL: no /dev/kvm"; exit 1; }
capi_cc "$work/t" "$root/tests/native/capi/create_chroot.c"
status=0
for order in create loaded; do
  dir=$work/root-$order
  mkdir -p "$dir/dev" "$dir/proc"
  mknod "$dir/dev/kvm" c 10 232
  echo "== $order"
  # A private mount namespace: /proc for the VMM's fd lookups, gone when the test ends.
  unshare -m sh -c 'mount -t proc proc "$1/proc" && exec timeout 120 "$2" "$3" "$1"' sh \
    "$dir" "$work/t" "$order" || status=1
done
exit $status
