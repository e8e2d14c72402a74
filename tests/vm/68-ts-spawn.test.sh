#!/usr/bin/env bash
# Vm.spawn()/output() under Deno and Bun: 64 MiB of guest stdout streamed byte-exact with
# bounded memory (and a reader that stops stalls the guest, not the process); a stdin round
# trip through cat; stdout and stderr apart; the status, VmState, the exit event; maxBuffer.
source "$(dirname "$0")/../ts/vm-common.sh"
scenario spawn-stream spawn-stdin output
[[ $fails -eq 0 ]]
