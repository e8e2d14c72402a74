#!/usr/bin/env bash
# `make demo`: shows what was built, then boots a microVM from a busybox rootfs directory and
# runs a command in it, printing its output and exit code. This machine's own /dev/kvm cannot
# run a Linux guest (see ../shared/TESTING.md); the demo probes for that honestly and, when the
# probe fails, runs the same demo inside the test host (QEMU TCG with real KVM inside).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/zig/bin:$PWD/.tools/js/node_modules/.bin:$PATH"

vmlinux=$(kernelfw/build-kernel.sh --print-path)
soname() { readelf -d "$1" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p'; }
echo "demo: libkrun    $(readlink -f zig-out/lib/libkrun.so.1) (soname $(soname zig-out/lib/libkrun.so.1), $(du -h zig-out/lib/libkrun.so.1 -L | cut -f1))"
echo "demo: libkrunfw  $(readlink -f zig-out/lib/libkrunfw.so.5) (soname $(soname zig-out/lib/libkrunfw.so.5), $(du -h zig-out/lib/libkrunfw.so.5 -L | cut -f1))"
echo "demo: kernel     $(strings "$vmlinux" | grep -m1 '^Linux version' | cut -d' ' -f1-3) ($vmlinux)"
echo "demo: init       zig-out/bin/init.krun ($(stat -c %s zig-out/bin/init.krun) bytes, embedded in libkrun)"

if [[ ${ZKRUN_DEMO_INSIDE_HOST:-} != 1 ]]; then
  zig build examples --summary none >/dev/null || { echo "demo: examples failed to build"; exit 1; }
fi
[[ -x zig-out/bin/chroot_vm ]] || { echo "demo: examples/chroot_vm not built yet"; exit 1; }
rootfs=${ZKRUN_DEMO_ROOTFS:-$PWD/.tools/demo-rootfs}
scripts/mkrootfs.sh "$rootfs" >/dev/null || { echo "demo: could not build the rootfs"; exit 1; }
cmd='uname -a; echo; head -5 /proc/cpuinfo; echo; ls /; exit 3'

run_demo() {
  echo "demo: booting a microVM (2 vCPUs, 512 MiB, root $rootfs): /bin/sh -c '$cmd'"
  echo "------------------------------------------------------------------------"
  zig-out/bin/chroot_vm -c 2 -m 512 "$rootfs" /bin/sh -c "$cmd"
  local rc=$?
  echo "------------------------------------------------------------------------"
  echo "demo: the guest's exit status reached the host: $rc"
  [[ $rc -eq 3 ]]
}

# The probe: a tiny long-mode guest runs a 20 M-iteration loop (a fraction of a second on real
# KVM). On a hypervisor that emulates guest ring 0 in software it cannot finish in 5 s, and a
# Linux guest cannot reach userspace there (../shared/TESTING.md).
probe_kvm() {
  [[ -c /dev/kvm ]] || { echo "no /dev/kvm"; return 1; }
  local smoke; smoke=$(tests/host/build-kvm-smoke.sh) || { echo "probe did not build"; return 1; }
  local out; out=$(timeout 30 "$smoke" --loop 20000000 --timeout 5 2>&1) && return 0
  echo "$(grep -m1 FAIL <<<"$out" | sed 's/^FAIL *//'): guest code runs in a software emulator"
  return 1
}

if [[ ${ZKRUN_DEMO_INSIDE_HOST:-} == 1 ]]; then run_demo; exit; fi
if why=$(probe_kvm); then
  run_demo
else
  echo "demo: this machine's /dev/kvm cannot run a Linux guest ($why); running the demo inside the test host"
  ZKRUN_DEMO_INSIDE_HOST=1 tests/host/run scripts/demo.sh
fi
