#!/usr/bin/env bash
# Guest memory is never executable in the host and stays out of core dumps and fork()ed
# children (issue 10 item 7): capi/guest_maps.c reads /proc/self/smaps with a VM running.
# The VM runs on this machine's /dev/kvm only long enough to be inspected and stopped.
source "$(dirname "$0")/capi/lib.sh"
[[ -e $prefix/lib/libkrunfw.so.5 ]] || { echo "FAIL: $prefix/lib/libkrunfw.so.5 is not built"; exit 1; }
[[ -c /dev/kvm ]] || { echo "FAIL: no /dev/kvm"; exit 1; }
capi_cc "$work/t" "$root/tests/native/capi/guest_maps.c"
timeout 120 "$work/t"
