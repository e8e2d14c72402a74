#!/usr/bin/env bash
# mod.ts under Deno (README's exact flags) and Bun: Vm.run() of /bin/sh -c 'echo out; exit 5'
# gives status 5 and the captured output "out", without taking over the process. Then every
# README TypeScript example and examples/run.ts command line, run as written.
source "$(dirname "$0")/../ts/vm-common.sh"
source tests/ts/readme-examples.sh
scenario exit-output
readme_examples
[[ $fails -eq 0 ]]
