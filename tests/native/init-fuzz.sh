#!/usr/bin/env bash
# Smoke run of the init configuration decoder fuzzer (tests/fuzz/init.zig): mutated config
# documents, random kernel argv/envp and encode→decode round trips, built ReleaseSafe; fails on
# a crash, a safety panic or a round trip that changes a value. INIT_FUZZ_ITERATIONS /
# INIT_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
seed=${INIT_FUZZ_SEED:-$RANDOM$RANDOM}
if ! ./zig-out/bin/fuzz-init "${INIT_FUZZ_ITERATIONS:-200000}" "$seed"; then
  echo "fuzz-init failed (seed $seed): rerun with INIT_FUZZ_SEED=$seed"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "1 passed, 0 failed"
