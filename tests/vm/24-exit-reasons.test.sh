#!/usr/bin/env bash
# Issue 10.6: krun_get_exit_reason and the status of each way a VM ends: the workload exits
# (its code, "exited"), krun_stop (137, "stopped"; the guest paused and resumed first with
# krun_vm_pause / krun_vm_resume: no output while paused, uptime not counting the pause), a guest kernel panic (panic_on_oom then
# out of memory: 1, "guest-panic"), a triple fault (a raw guest with an empty IDT: 1,
# "triple-fault").
source "$(dirname "$0")/23-life-common.sh"
life reasons "$ROOTFS"
