#!/usr/bin/env bash
# mod.ts under Deno and Bun: run({ timeoutMs }) stops a guest that does not end and rejects
# with ETIMEDOUT; disposing a running Vm (await using) stops it and frees it.
source "$(dirname "$0")/../ts/vm-common.sh"
scenario stop
[[ $fails -eq 0 ]]
