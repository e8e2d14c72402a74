#!/usr/bin/env bash
# Issue 10.1: guest processes other than init send the exit-code ioctl (0x7602) with -110 and
# other values, as uid 1000 and as root, some then resetting the VM before init reports. The
# embedding process survives every one and gets the workload's real code, or a status >= 0
# with its reason (krun_get_exit_reason); the guest sees its ioctl refused.
source "$(dirname "$0")/23-life-common.sh"
life hostile "$ROOTFS"
