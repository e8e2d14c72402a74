#!/usr/bin/env bash
# Console bench (BENCHMARKS.md "virtio", guest → host output throughput): a busybox guest
# (examples/chroot_vm) runs `dd if=/dev/zero bs=64k count=N` to its stdout, which is the
# krun-stdout port onto a host pipe read by `cat >/dev/null`, and the same dd to /dev/null; both
# timed on the host (Debian's busybox dd prints no time), so the difference is the output's cost
# (boot and teardown cancel out). With ZKRUN_BENCH_BEFORE_LIB=/path/libkrun.so.1 (a copy inside
# the checkout, e.g. an older build in zig-out/before/), the same runs are repeated with that
# library preloaded, in the same test host.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
count=${ZKRUN_BENCH_DD_COUNT:-256}
runs=${ZKRUN_BENCH_RUNS:-3}
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  tests/native/capi/vm-build.sh >/dev/null || { echo "console: vm-build.sh failed"; exit 1; }
  [[ -x tests/host/run ]] || { echo "console: SKIP: no test host (tests/host/run)"; exit 77; }
  exec tests/host/run --timeout 1200 env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_RUNS="$runs" \
    ZKRUN_BENCH_DD_COUNT="$count" ZKRUN_BENCH_BEFORE_LIB="${ZKRUN_BENCH_BEFORE_LIB:-}" "$0"
fi
built=$(tests/native/capi/vm-build.sh) || exit 1
bin() { sed -n "s/^$1=//p" <<<"$built"; }
vm=$(bin chroot_vm) rootfs=$(bin rootfs)
[[ -x $vm && -x $rootfs/bin/sh ]] || { echo "console: chroot_vm or the busybox rootfs is missing"; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
err=$(mktemp)
# host wall seconds for one run: $1 = preload ("" for the current build), $2 = of= argument
dd_secs() {
  local pre=$1 of=$2 t0 t1
  t0=$(date +%s%N)
  env ${pre:+LD_PRELOAD=$pre} timeout 600 "$vm" -m 256 "$rootfs" /bin/dd if=/dev/zero $of bs=64k count="$count" \
    </dev/null 2>"$err" | cat >/dev/null
  t1=$(date +%s%N)
  grep -q "$count+0 records out" "$err" || { echo "console: dd did not finish: $(tail -3 "$err")" >&2; echo 0; return; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}
mib=$((count / 16))
for lib in current ${ZKRUN_BENCH_BEFORE_LIB:+before}; do
  pre=""; [[ $lib == before ]] && pre=$ZKRUN_BENCH_BEFORE_LIB
  out=() null=()
  for _ in $(seq "$runs"); do
    out+=("$(dd_secs "$pre" "")")
    null+=("$(dd_secs "$pre" of=/dev/null)")
  done
  o=$(printf '%s\n' "${out[@]}" | median) n=$(printf '%s\n' "${null[@]}" | median)
  echo "console: $lib: wall s to stdout ${out[*]}, to /dev/null ${null[*]}"
  awk -v o="$o" -v n="$n" -v m="$mib" -v l="$lib" 'BEGIN {
    if (o > n && n > 0) printf "console: guest to host krun-stdout %d MiB (%s): %.2f MiB/s\n", m, l, m / (o - n) }'
done
rm -f "$err"
