#!/usr/bin/env bash
# The vsock option and vm.connect() under Deno and Bun: a guest (80-vsock-guest.zig's
# /vsock-guest) connects to a host unix listener, then serves a vsock port that vm.connect()
# reaches as a node:net Socket.
source "$(dirname "$0")/../ts/vm-common.sh"
built=$(tests/vm/80-vsock-build.sh) || skip "tests/vm/80-vsock-build.sh failed (run tests/vm/80-vsock.prepare.sh)"
ROOTFS=$(sed -n 's/^rootfs=//p' <<<"$built")
[[ -x $ROOTFS/vsock-guest ]] || skip "no /vsock-guest in $ROOTFS"
# Deno checks unix sockets against --allow-net (unix:PATH): the test's listener and vm.connect().
DENO+=(--allow-net)
scenario vsock
[[ $fails -eq 0 ]]
