#!/usr/bin/env bash
# TypeScript idle bench (BENCHMARKS.md "TypeScript"): 10 Linux VMs (`sleep 600`, started with
# Vm.spawn) waited on by one Deno and one Bun process, inside the test host; the CPU the JS
# thread and the whole process use while nothing happens (tests/ts/bench-idle.ts). Deno waits
# with a nonblocking krun_wait per VM (a blocked pool thread each), Bun polls krun_wait(ctx, 0).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
vms=${ZKRUN_BENCH_VMS:-10}
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  [[ -e zig-out/lib/libkrunfw.so.5 ]] || { echo "ts-idle: libkrunfw.so.5 not built (zig build -Dkernel=...)"; exit 1; }
  [[ -x tests/host/run ]] || { echo "ts-idle: SKIP: no test host (tests/host/run)"; exit 77; }
  scripts/mkrootfs.sh "$PWD/.tools/ts-rootfs" >/dev/null || { echo "ts-idle: mkrootfs failed"; exit 1; }
  exec tests/host/run --timeout 1200 env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_VMS="$vms" "$0"
fi
root=$PWD/.tools/ts-rootfs
deno run --quiet --allow-ffi --allow-read --allow-env tests/ts/bench-idle.ts "$root" "$vms" | sed 's/^/ts-idle: /'
bun tests/ts/bench-idle.ts "$root" "$vms" | sed 's/^/ts-idle: /'
