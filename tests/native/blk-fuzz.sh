#!/usr/bin/env bash
# Smoke run of the virtio-blk fuzzers (tests/fuzz/blk.zig), built ReleaseSafe: the
# request decoder, the whole device on a real image through the MMIO transport (hostile
# chains), and the qcow2 reader on images made by Debian's qemu-img with their metadata
# mutated. Fails on a crash, a safety panic, a hang or a broken invariant.
# BLK_FUZZ_ITERATIONS (a base count) / BLK_FUZZ_SEED override the defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
command -v qemu-img >/dev/null || { echo "no qemu-img: the qcow2 fuzzer needs images made by it (scripts/setup.sh installs qemu-utils)"; echo "0 passed, 1 failed"; exit 1; }
zig build fuzz -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
n=${BLK_FUZZ_ITERATIONS:-1000}
seed=${BLK_FUZZ_SEED:-$RANDOM$RANDOM}
work=$(mktemp -d /tmp/zkrun-blk-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c 2M /dev/urandom > "$work/base.raw"
truncate -s 4M "$work/base.raw"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 "$work/base.raw" "$work/comp.qcow2"
qemu-img create -q -f qcow2 -b comp.qcow2 -F qcow2 "$work/over.qcow2"
qemu-io -c "write -P 0x55 1M 64k" -c "write -z 3M 64k" "$work/over.qcow2" >/dev/null
passed=0 failed=0
run() {
  if timeout 600 ./zig-out/bin/fuzz-blk "$@" "$seed"; then passed=$((passed + 1))
  else failed=$((failed + 1)); echo "fuzz-blk $* failed (seed $seed): rerun with BLK_FUZZ_SEED=$seed"; fi
}
run decode $((n * 200))
run device $((n * 2))
run qcow2 "$work/comp.qcow2" "$n"
run qcow2 "$work/over.qcow2" "$n"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
