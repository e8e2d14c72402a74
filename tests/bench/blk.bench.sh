#!/usr/bin/env bash
# virtio-blk figures (BENCHMARKS.md "virtio-blk"):
# 1. in a guest, zkrun vs QEMU's virtio-blk on the same kind of image (raw, qcow2), sequential
#    and 4 KiB random, 1 and 4 jobs: tests/bench/blk-guest.sh inside the test host (13 minutes
#    with 2 rounds on 2026-12-01, ~3 on 2026-12-03; BLK_ROUNDS=1 for one round). Ratios only
#    (emulated host). Guest runs of both sides sometimes stop in the middle of a workload in
#    the test host (2026-12-03; see blk-guest.sh's `once`): a run ends at most
#    BLK_RUN_TIMEOUT (300) + 10 s after it started, a failed run is run once more ("BLK_RETRY"
#    lines), and a second failure fails the bench with the output's last lines.
# 2. on this machine, no guest: the device's 4-worker pool vs the io_uring prototype backend
#    and an 8-worker pool (zig-out/bin/bench-blk, tests/zig/blk/bench.zig; `zig build harness`), page cache and
#    O_DIRECT. The test host's kernel has no io_uring (CONFIG_IO_URING is off in the guest
#    kernel it shares), so this comparison cannot run in there.
# BLK_BENCH=0 skips it all; BLK_GUEST=0 skips part 1.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ ${BLK_BENCH:-1} == 0 ]] && exit 0
export PATH="$PWD/.tools/zig/bin:$PATH"
status=0
# What the guest part and part 2 need, built here first (all cached; on a fresh machine none of
# it exists yet): the busybox rootfs (.tools/ts-rootfs), the blk VM tests' host program and
# bench-blk.
tests/vm/60-ts.prepare.sh >/dev/null && tests/vm/90-blk.prepare.sh >/dev/null \
  && zig build harness --summary none || { echo "blk: building what the bench needs failed"; exit 1; }
if [[ ${BLK_GUEST:-1} != 0 ]]; then
  out=$(tests/host/run --timeout "${ZKRUN_BENCH_TIMEOUT:-3600}" tests/bench/blk-guest.sh 2>&1); hrc=$?
  grep -E '^(guest\.|SKIP|zkrun|QEMU|BLK)' <<<"$out"
  # 125, the test host itself failed: passed on, so make bench runs this bench once more.
  [[ $hrc -eq 125 ]] && { echo "$out" | tail -5; exit 125; }
  [[ $hrc -eq 0 ]] || status=1
  grep -q '^SKIP' <<<"$out" && status=1 # a figure that could not be measured is a failure here
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
