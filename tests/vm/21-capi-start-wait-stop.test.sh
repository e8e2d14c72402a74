#!/usr/bin/env bash
# krun_start / krun_wait / krun_stop in one process (tests/native/capi/vm_inproc.c): a VM to its
# end, two VMs at once, -ETIMEDOUT, one waiter at a time, krun_stop ending a guest that never
# ends by itself, krun_free_ctx of a running VM.
source "$(dirname "$0")/../native/capi/vm-common.sh"
out=$(timeout 500 "$(bin vm_inproc)" "$KERNEL" "$INITRD" "$CMDLINE" "$HANG_CMDLINE" "$work" 2>&1); rc=$?
echo "$out"
expect "in-process start/wait/stop (exit $rc)" '[[ $rc -eq 0 ]]' "$(tail -5 "$work"/d.log 2>/dev/null)"
[[ $fails -eq 0 ]]
