#!/usr/bin/env bash
# VMM bench (figures for BENCHMARKS.md "VMM"): setup time from create to the first KVM_RUN,
# VM exits from start to the guest's exit, VMM RSS beyond guest memory, wall time to boot our
# vmlinux + test initramfs to its init and back out; QEMU microvm booting the same kernel and
# initramfs in the same run for comparison; the stripped size of libkrun.so.
# Linux guests need real KVM, so this runs itself inside the test host (tests/host/run).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
runs=${ZKRUN_BENCH_RUNS:-5}
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  # libkrun.so size is a property of the build, measured here.
  lib=zig-out/lib/libkrun.so.1
  if [[ -f $lib ]]; then
    strip -o /tmp/zkrun-libkrun.stripped "$lib" && echo "vmm: libkrun.so.1 stripped size: $(stat -c %s /tmp/zkrun-libkrun.stripped) bytes"
  else
    echo "vmm: libkrun.so.1 not built (make build)"
  fi
  [[ -x tests/host/run ]] || { echo "vmm: SKIP: no test host (tests/host/run) to boot Linux guests in"; exit 77; }
  # The VMM driver and the test initramfs, built here at native speed: inside the test host
  # (tests/vm/boot/common.sh builds what is missing) the driver's compile runs under TCG, and in a fresh
  # clone (2026-12-03) the bench reached the test host's 1,500 s limit with no figure.
  tests/vm/10-vmm.prepare.sh >/dev/null || { echo "vmm: tests/vm/10-vmm.prepare.sh failed"; exit 1; }
  exec tests/host/run env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_RUNS="$runs" "$0"
fi

source tests/vm/boot/common.sh
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }

setup=() exits=() vmmrss=() walls=()
for i in $(seq "$runs"); do
  t0=$(ms_now)
  o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE quiet" \
        --vcpus 1 --mem 256 --console-output /dev/null 2>&1) || { echo "vmm: boot failed: $o"; exit 1; }
  walls+=($(( $(ms_now) - t0 )))
  setup+=($(sed -n 's/.*setup_us=\([0-9]*\).*/\1/p' <<<"$o"))
  exits+=($(sed -n 's/.* exits=\([0-9]*\).*/\1/p' <<<"$o"))
  vmmrss+=($(sed -n 's/.*vmm_rss_kb=\([0-9]*\).*/\1/p' <<<"$o"))
done
echo "vmm: zkrun setup create->first KVM_RUN (median of $runs): $(printf '%s\n' "${setup[@]}" | median) us"
echo "vmm: zkrun VM exits start->guest exit (median): $(printf '%s\n' "${exits[@]}" | median)"
echo "vmm: zkrun VMM RSS beyond guest memory (median): $(printf '%s\n' "${vmmrss[@]}" | median) KiB"
echo "vmm: zkrun wall, process start->exit (median): $(printf '%s\n' "${walls[@]}" | median) ms"

if command -v qemu-system-x86_64 >/dev/null; then
  qwalls=() qrss=()
  for i in $(seq "$runs"); do
    t0=$(ms_now)
    /usr/bin/time -f '%M' -o /tmp/zkrun-qemu.rss qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256 -smp 1 \
      -nodefaults -no-user-config -display none -serial file:/tmp/zkrun-qemu.out -no-reboot \
      -kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 reboot=t panic=-1 rdinit=/init quiet" >/dev/null 2>&1
    qwalls+=($(( $(ms_now) - t0 )))
    qrss+=($(tail -1 /tmp/zkrun-qemu.rss))
  done
  grep -q "ZKRUN-TEST done" /tmp/zkrun-qemu.out || echo "vmm: (qemu microvm run did not reach the test init's end)"
  echo "vmm: qemu microvm wall, process start->exit (median of $runs): $(printf '%s\n' "${qwalls[@]}" | median) ms"
  echo "vmm: qemu microvm max RSS (median, guest memory included): $(printf '%s\n' "${qrss[@]}" | median) KiB"
else
  echo "vmm: qemu-system-x86_64 not available in the test host: no comparison"
fi
