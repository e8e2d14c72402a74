#!/usr/bin/env bash
# TypeScript spawn bench (BENCHMARKS.md "TypeScript"), inside the test host:
# 1. output throughput: a guest's `dd if=/dev/zero bs=64k count=N` through Vm.spawn()'s stdout
#    (tests/ts/bench-spawn.ts) under Deno and Bun, against the same dd through the C example
#    chroot_vm's stdout into `cat` (tests/bench/console.bench.sh's way), against the dd to
#    /dev/null in the guest (boot and teardown), and against dd | cat of the same bytes on the host;
# 2. idle cost: 10 VMs (`sleep 600`) waited on by one Deno and one Bun process
#    (tests/ts/bench-idle.ts): the CPU the JS thread and the whole process use while nothing happens.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
vms=${ZKRUN_BENCH_VMS:-10}
count=${ZKRUN_BENCH_DD_COUNT:-256}
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  [[ -e zig-out/lib/libkrunfw.so.5 ]] || { echo "ts-spawn: libkrunfw.so.5 not built (zig build -Dkernel=...)"; exit 1; }
  [[ -x tests/host/run ]] || { echo "ts-spawn: SKIP: no test host (tests/host/run)"; exit 77; }
  tests/native/capi/vm-build.sh >/dev/null || { echo "ts-spawn: vm-build.sh failed"; exit 1; }
  scripts/mkrootfs.sh "$PWD/.tools/ts-rootfs" >/dev/null || { echo "ts-spawn: mkrootfs failed"; exit 1; }
  exec tests/host/run --timeout 1800 env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_VMS="$vms" ZKRUN_BENCH_DD_COUNT="$count" "$0"
fi
root=$PWD/.tools/ts-rootfs
built=$(tests/native/capi/vm-build.sh) || exit 1
vm=$(sed -n 's/^chroot_vm=//p' <<<"$built")
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
t0=$(date +%s%N); dd if=/dev/zero bs=64k count="$count" 2>/dev/null | cat >/dev/null; t1=$(date +%s%N)
echo "ts-spawn: host dd | cat, $((count / 16)) MiB: $(secs "$t0" "$t1") s"
t0=$(date +%s%N)
timeout 600 "$vm" -m 256 "$root" /bin/dd if=/dev/zero bs=64k count="$count" </dev/null 2>/dev/null | cat >/dev/null
t1=$(date +%s%N)
echo "ts-spawn: C chroot_vm dd | cat, $((count / 16)) MiB: $(secs "$t0" "$t1") s"
deno run --quiet --allow-ffi --allow-read --allow-env tests/ts/bench-spawn.ts "$root" "$count" | sed 's/^/ts-spawn: /'
bun tests/ts/bench-spawn.ts "$root" "$count" | sed 's/^/ts-spawn: /'
# -A: Deno lets a script read /proc/<pid>/task/<tid>/stat (the JS thread's CPU time) only with
# every permission; without it the read threw NotCapable (and the exit with VMs running crashed).
deno run --quiet -A tests/ts/bench-idle.ts "$root" "$vms" | sed 's/^/ts-spawn: /'
bun tests/ts/bench-idle.ts "$root" "$vms" | sed 's/^/ts-spawn: /'
