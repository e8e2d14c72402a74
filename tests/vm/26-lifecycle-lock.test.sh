#!/usr/bin/env bash
# Issue 10.4: a krun_start stuck in the VMM (its kernel file became a FIFO nobody writes)
# holds up no other context: another VM is created, started, stopped and freed meanwhile;
# the stuck context answers -EBUSY / records krun_stop at once, then fails cleanly and frees.
source "$(dirname "$0")/23-life-common.sh"
life lock
