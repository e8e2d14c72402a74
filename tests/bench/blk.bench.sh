#!/usr/bin/env bash
# virtio-blk throughput in a guest, zkrun vs QEMU's virtio-blk on the same kind of image (raw,
# qcow2), sequential and 4 KiB random, 1 and 4 jobs: tests/bench/blk-guest.sh inside the test
# host (about 10 minutes). Ratios only (emulated host). BLK_BENCH=0 skips it.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ ${BLK_BENCH:-1} == 0 ]] && exit 0
tests/host/run --timeout 1500 tests/bench/blk-guest.sh 2>&1 | grep -E '^(guest\.|SKIP|zkrun|QEMU|BLK)' || exit 1
