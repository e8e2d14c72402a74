#!/usr/bin/env bash
# Vm.spawn({ tty }) under Deno and Bun: the workload's stdin/stdout/stderr are one new
# pseudo-terminal of the asked size, typed input is echoed and read, child.resize() reaches the
# guest (krun_set_console_size), the status comes back and stdout ends.
source "$(dirname "$0")/../ts/vm-common.sh"
scenario spawn-tty
[[ $fails -eq 0 ]]
