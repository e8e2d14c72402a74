#!/usr/bin/env bash
# Smoke run of the vsock/TSI fuzzer (tests/fuzz/vsock.zig): random and mutated vsock
# packets from a simulated guest against the real device (TSI on, no family allowed: nothing
# reaches the network), and random TSI requests and datagram frames against tsi/wire.zig's
# decoders, built ReleaseSafe; fails on a crash, a safety panic or a broken invariant (a
# malformed packet to the guest, the connection cap exceeded, a ring over its size).
# VSOCK_FUZZ_ITERATIONS / VSOCK_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
seed=${VSOCK_FUZZ_SEED:-$RANDOM$RANDOM}
if ! ./zig-out/bin/fuzz-vsock "${VSOCK_FUZZ_ITERATIONS:-300}" "$seed"; then
  echo "fuzz-vsock failed (seed $seed): rerun with VSOCK_FUZZ_SEED=$seed"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
