#!/usr/bin/env bash
# Smoke run of the virtqueue walker fuzzer (tests/fuzz/queue.zig): random and mutated
# rings in driver-controlled guest memory against pop/Reader/Writer/addUsed, built ReleaseSafe;
# fails on a crash, a safety panic or a broken invariant (an error that leaves the queue usable,
# more pops than the queue holds, a used index out of step). QUEUE_FUZZ_ITERATIONS /
# QUEUE_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
seed=${QUEUE_FUZZ_SEED:-$RANDOM$RANDOM}
if ! ./zig-out/bin/fuzz-queue "${QUEUE_FUZZ_ITERATIONS:-200000}" "$seed"; then
  echo "fuzz-queue failed (seed $seed): rerun with QUEUE_FUZZ_SEED=$seed"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
