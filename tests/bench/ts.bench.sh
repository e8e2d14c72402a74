#!/usr/bin/env bash
# TypeScript bench (BENCHMARKS.md "TypeScript"): FFI call cost per runtime against C for three
# library calls (tests/ts/bench.ts, tests/ts/bench_ffi.c; best of 3 runs, on this machine);
# create+start+wait+free of a hand-made raw guest on this machine's KVM (Vm.run() vs C); and
# Vm.run() of /bin/true end to end under Deno and Bun against the C example chroot_vm, inside
# the test host (Linux guests need real KVM).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PWD/.tools/js/node_modules/.bin:$PATH"
calls=${ZKRUN_BENCH_CALLS:-1000000}
runs=${ZKRUN_BENCH_RUNS:-5}
lib=zig-out/lib/libkrun.so.1

if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  [[ -e $lib ]] || { echo "ts: libkrun.so.1 not built (make build)"; exit 1; }
  bin=$(mktemp -d); trap 'rm -rf "$bin"' EXIT
  cc -O2 -o "$bin/bench_ffi" tests/ts/bench_ffi.c -L"$(dirname "$lib")" -lkrun -Wl,-rpath,"$PWD/$(dirname "$lib")" ||
    { echo "ts: C baseline failed to build"; exit 1; }
  # The hand-made guest of tests/ts/cases.ts: "OK" on COM1, then the i8042 reset.
  printf '\x66\xba\xf8\x03\xb0\x4f\xee\xb0\x4b\xee\xb0\x0a\xee\xb0\xfe\xe6\x64\xf4' >"$bin/tiny.bin"
  all=$(for i in 1 2 3; do
    "$bin/bench_ffi" "$calls" "$bin/tiny.bin" "$runs"
    deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env tests/ts/bench.ts "$calls"
    deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env tests/ts/bench-run.ts --tiny "$bin/tiny.bin" "$runs"
    bun tests/ts/bench.ts "$calls"
    bun tests/ts/bench-run.ts --tiny "$bin/tiny.bin" "$runs"
  done)
  best() { awk -v rt="$1" -v w="$2" '$1 == rt && $2 == w { if (m == "" || $3 < m) m = $3 } END { print (m == "" ? "-" : m) }' <<<"$all"; }
  for what in krun_has_feature krun_set_nested_virt krun_set_vm_config Context.setVmConfig "Context.setExec"; do
    printf 'ts: ns/call %-28s C %8s  Deno %8s  Bun %8s\n' "$what" "$(best c "$what")" "$(best deno "$what")" "$(best bun "$what")"
  done
  printf 'ts: ms      %-28s C %8s  Deno %8s  Bun %8s  (median of %s, best of 3)\n' "run(tiny raw guest)" \
    "$(best c "run(tiny)")" "$(best deno "run(tiny)")" "$(best bun "run(tiny)")" "$runs"
  # The run() part's pieces, built here (cached; on a fresh machine none exists yet): the C
  # example chroot_vm and the busybox rootfs. A figure that cannot be measured fails the bench.
  kernel=$(kernelfw/build-kernel.sh --print-path)
  [[ -f $kernel ]] || { echo "ts: run() of /bin/true: the kernel is not built (make build)"; exit 1; }
  zig build examples -Dkernel="$kernel" --summary none || { echo "ts: zig build examples failed"; exit 1; }
  scripts/mkrootfs.sh "$PWD/.tools/ts-rootfs" >/dev/null || { echo "ts: mkrootfs failed"; exit 1; }
  exec tests/host/run env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_RUNS="$runs" "$0"
fi

# Inside the test host.
[[ -e zig-out/lib/libkrunfw.so.5 ]] || { echo "ts: run() of /bin/true: libkrunfw.so.5 not built"; exit 1; }
[[ -x zig-out/bin/chroot_vm ]] || { echo "ts: run() of /bin/true: zig-out/bin/chroot_vm not built (zig build examples)"; exit 1; }
root=$PWD/.tools/ts-rootfs # built on the machine above
[[ -x $root/bin/sh ]] || { echo "ts: no busybox rootfs at $root"; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms_now() { local ns; ns=$(date +%s%N); echo $((ns / 1000000)); } # bash integers: awk's %d is 32-bit
c=()
for i in $(seq "$runs"); do
  # The C way to a build tree's libkrun and libkrunfw: LD_LIBRARY_PATH.
  t0=$(ms_now)
  LD_LIBRARY_PATH=$PWD/zig-out/lib zig-out/bin/chroot_vm -c 1 -m 128 "$root" /bin/true </dev/null >/dev/null 2>&1 ||
    { echo "ts: chroot_vm /bin/true failed"; exit 1; }
  c+=($(( $(ms_now) - t0 )))
done
echo "ts: C chroot_vm -c 1 -m 128 /bin/true, process start->exit (median of $runs): $(printf '%s\n' "${c[@]}" | median) ms"
deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env=LIBKRUN_PATH,TMPDIR tests/ts/bench-run.ts "$root" "$runs" | sed 's/^/ts: in-process /;s/$/ ms/'
bun tests/ts/bench-run.ts "$root" "$runs" | sed 's/^/ts: in-process /;s/$/ ms/'
