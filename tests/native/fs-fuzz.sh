#!/usr/bin/env bash
# Smoke run of the virtio-fs FUSE fuzzer (tests/fuzz/fs.zig): mutated requests of every
# opcode against a real share; fails on a crash, a safety panic, a malformed reply or any change
# outside the share. FS_FUZZ_ITERATIONS / FS_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
seed=${FS_FUZZ_SEED:-$RANDOM$RANDOM}
before=$(ls -d /var/tmp/zkrun-fs-fuzz-* 2>/dev/null)
./zig-out/bin/fuzz-fs "${FS_FUZZ_ITERATIONS:-300000}" "$seed"; rc=$?
for d in /var/tmp/zkrun-fs-fuzz-*; do
  [[ -d $d ]] && ! grep -qx "$d" <<<"$before" && rm -rf -- "$d"
done
if [[ $rc -ne 0 ]]; then echo "fuzz-fs failed (seed $seed): rerun with FS_FUZZ_SEED=$seed"; exit 1; fi
