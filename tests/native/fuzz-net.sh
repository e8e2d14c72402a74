#!/usr/bin/env bash
# Smoke run of the virtio-net fuzzer (libkrun-c/virtio/net/fuzz.zig): random transmit headers,
# lengths and descriptor layouts from a simulated guest, random rx buffer sizes, and random or
# hostile backend bytes (length prefixes, datagrams) against the real device on a socketpair,
# built ReleaseSafe; fails on a crash, a safety panic or a broken invariant (a malformed buffer
# to the guest or record to the peer, a ring over its size). NET_FUZZ_ITERATIONS /
# NET_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
seed=${NET_FUZZ_SEED:-$RANDOM$RANDOM}
if ! ./zig-out/bin/fuzz-net "${NET_FUZZ_ITERATIONS:-300}" "$seed"; then
  echo "fuzz-net failed (seed $seed): rerun with NET_FUZZ_SEED=$seed"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
