#!/usr/bin/env bash
# virtio-blk figures (BENCHMARKS.md "virtio-blk"):
# 1. in a guest, zkrun vs QEMU's virtio-blk on the same kind of image (raw, qcow2), sequential
#    and 4 KiB random, 1 and 4 jobs: tests/bench/blk-guest.sh inside the test host (about 13
#    minutes with 2 rounds; BLK_ROUNDS=1 for one). Ratios only (emulated host).
# 2. on this machine, no guest: the device's 4-worker pool vs the io_uring prototype backend
#    and an 8-worker pool (zig-out/bin/bench-blk, tests/zig/blk/bench.zig; `zig build harness`), page cache and
#    O_DIRECT. The test host's kernel has no io_uring (CONFIG_IO_URING is off in the guest
#    kernel it shares), so this comparison cannot run in there.
# BLK_BENCH=0 skips it all; BLK_GUEST=0 skips part 1.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ ${BLK_BENCH:-1} == 0 ]] && exit 0
status=0
if [[ ${BLK_GUEST:-1} != 0 ]]; then
  tests/host/run --timeout 1800 tests/bench/blk-guest.sh 2>&1 | grep -E '^(guest\.|SKIP|zkrun|QEMU|BLK)' || status=1
fi
bench=zig-out/bin/bench-blk
if [[ -x $bench ]]; then
  img=$(mktemp /var/tmp/zkrun-bench-blk.XXXXXX) # on disk, not tmpfs: O_DIRECT needs it
  "$bench" "$img" 3 || status=1
  "$bench" "$img" 3 direct || status=1
  rm -f "$img"
else
  echo "blk: $bench not built (zig build harness)"; status=1
fi
exit $status
