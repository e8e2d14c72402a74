#!/usr/bin/env bash
# mod.ts under Deno (nonblocking krun_wait) and Bun (krun_wait polling): two VMs run at once
# from one process, each with its own status and output.
source "$(dirname "$0")/../ts/vm-common.sh"
scenario concurrent
[[ $fails -eq 0 ]]
