#!/usr/bin/env bash
# Vm.spawn()/output() under Deno and Bun: an AbortSignal (and AbortSignal.timeout) stops the
# VM with reason "stopped"; a guest kernel panic gives reason "guest-panic".
source "$(dirname "$0")/../ts/vm-common.sh"
scenario spawn-abort panic
[[ $fails -eq 0 ]]
