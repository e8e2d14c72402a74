#!/usr/bin/env bash
# virtio-fs server cost per FUSE request on this machine, through the server's entry point
# (libkrun-c/virtio/fs/bench.zig): LOOKUP(+FORGET), GETATTR, READ/WRITE 4 KiB, READDIRPLUS of 64
# entries. Wall time per request on this machine (syscalls dominate; see BENCHMARKS.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
out=zig-out/bench; mkdir -p "$out"
zig build-exe -O fast -lc -femit-bin="$out/bench-fs" libkrun-c/virtio/fs/bench.zig || exit 1
work=$(mktemp -d /var/tmp/zkrun-fs-bench.XXXXXX); trap 'rm -rf "$work"' EXIT
mkdir "$work/a"
"$out/bench-fs" "$work/a" "${FS_BENCH_ITERATIONS:-200000}" 2>&1 || exit 1
