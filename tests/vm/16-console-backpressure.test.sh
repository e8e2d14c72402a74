#!/usr/bin/env bash
# Back-pressure on guest output (tests/native/capi/vm_flood.c): a guest flooding its krun-stdout
# port and a kernel flooding COM1, both into pipes nobody reads; krun_stop → krun_wait →
# krun_free_ctx return within 10 s, and another context keeps starting and finishing VMs
# meanwhile (its create/start/free calls never wait long on the global lock).
source "$(dirname "$0")/../native/capi/vm-common.sh"
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
ROOTFS=${ZKRUN_CAPI_ROOTFS:-$(bin rootfs)}
[[ -x $ROOTFS/bin/sh ]] || { echo "FAIL: no busybox rootfs at '$ROOTFS' (scripts/mkrootfs.sh)"; exit 1; }
# The program's own watchdog fails it after 10 s of stop/wait/free; timeout only guards the rest.
out=$(timeout 900 "$(bin vm_flood)" "$KERNEL" "$INITRD" "$CMDLINE" "$ROOTFS" "$work" 2>&1); rc=$?
echo "$out"
expect "flooding guests end within 10 s of krun_stop; another context runs on (exit $rc)" '[[ $rc -eq 0 ]]' "$(tail -5 "$work"/b-*.log 2>/dev/null | tail -20)"
[[ $fails -eq 0 ]]
