#!/usr/bin/env bash
# tests/host/run --arch aarch64 (runs on the machine), in two boots: the contract every
# architecture's host keeps (tests/host/contract-lib.sh): status, streams, same directory on an
# aarch64 kernel, writable checkout, /dev/kvm, --timeout gives 124, no kernel gives 125.
source "$(dirname "$0")/../host/contract-lib.sh"
host_contract aarch64 aarch64 120000 /nonexistent/Image
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
