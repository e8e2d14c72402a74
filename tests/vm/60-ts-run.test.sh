#!/usr/bin/env bash
# mod.ts under Deno (README's exact flags) and Bun: Vm.run() of /bin/sh -c 'echo out; exit 5'
# gives status 5 and the captured output "out", without taking over the process.
source "$(dirname "$0")/../ts/vm-common.sh"
scenario exit-output
[[ $fails -eq 0 ]]
