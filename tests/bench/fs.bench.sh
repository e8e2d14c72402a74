#!/usr/bin/env bash
# virtio-fs server cost per FUSE request on this machine, through the server's entry point
# (tests/zig/fs/bench.zig): LOOKUP(+FORGET), GETATTR, READ/WRITE 4 KiB, READDIRPLUS of 64
# entries. Wall time per request on this machine (syscalls dominate; see BENCHMARKS.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build harness -j2 --summary none || exit 1 # bench-fs is built ReleaseFast
work=$(mktemp -d /var/tmp/zkrun-fs-bench.XXXXXX); trap 'rm -rf "$work"' EXIT
mkdir "$work/a"
./zig-out/bin/bench-fs "$work/a" "${FS_BENCH_ITERATIONS:-200000}" 2>&1 || exit 1
# The same workload in a guest: zkrun's server vs QEMU + Debian's virtiofsd, inside the test host
# (about 5 minutes). FS_BENCH_GUEST=0 skips it.
if [[ ${FS_BENCH_GUEST:-1} != 0 ]]; then
  tests/host/run --timeout 900 tests/bench/fs-guest.sh 2>&1 | grep -E '^(guest\.|zkrun:|QEMU|SKIP|---|qemu|fv_)' || exit 1
fi
