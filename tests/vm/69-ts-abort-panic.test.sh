#!/usr/bin/env bash
# Vm.spawn()/output() under Deno and Bun: an AbortSignal (and AbortSignal.timeout) stops the
# VM with reason "stopped"; a guest kernel panic gives reason "guest-panic"; volumes (one read-only)
# and a disk reach the guest. Then every README
# TypeScript example and examples/run.ts command line, run as written.
source "$(dirname "$0")/../ts/vm-common.sh"
source tests/ts/readme-examples.sh
scenario spawn-abort
scenario panic
scenario volumes-disks
readme_examples
[[ $fails -eq 0 ]]
