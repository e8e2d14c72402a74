#!/usr/bin/env bash
# tests/native/kernelfw-qemu-boot.sh [--arch x86_64|aarch64]: boots our guest kernel
# (kernelfw/build-kernel.sh --arch ARCH --print-path; default x86_64) under QEMU TCG with a tiny
# static test init (tests/native/kernelfw/boot_init.zig, built for ARCH) that checks, from inside
# the guest, the filesystems, syscalls, namespaces, seccomp, sockets, the wall clock and /dev/kvm
# zkrun relies on, prints a marker and reboots. x86_64: the vmlinux (PVH entry) on QEMU microvm,
# console ttyS0, 2 CPUs from the MP table. aarch64: the raw Image on -M virt (GICv3, a
# virtio-mmio rng device), console ttyAMA0 (PL011), 2 CPUs through PSCI CPU_ON, and the GICv3
# driver must probe. Passes when every check passed, the marker appeared and QEMU exited by
# itself (-no-reboot) before the hard timeout. Not built yet is not a pass: without the kernel
# this fails and says how to build it. The native tier runs the x86_64 default.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"

arch=x86_64
case "${1:-}" in
"") ;;
--arch) arch=${2:-} ;;
--arch=*) arch=${1#--arch=} ;;
*) echo "usage: $0 [--arch x86_64|aarch64]" >&2; exit 2 ;;
esac
case $arch in
x86_64)
  timeout_s=${KERNELFW_BOOT_TIMEOUT:-120}
  build="make kernel"
  # -smp 2: SMP comes up from the MP table (no ACPI in our kernel).
  qemu=(qemu-system-x86_64 -M microvm -accel tcg -cpu max)
  append="console=ttyS0 reboot=t panic=-1"
  banner="Linux version 6.12" console=ttyS0 cpus_from="MP table"
  ;;
aarch64)
  timeout_s=${KERNELFW_BOOT_TIMEOUT:-180}
  build="kernelfw/build-kernel.sh --arch aarch64, ~25 min cold on 2 cores"
  qemu=(qemu-system-aarch64 -M virt,gic-version=3 -accel tcg -cpu max,pauth-impdef=on
    -device virtio-rng-device)
  append="console=ttyAMA0 panic=-1"
  banner="Linux version 6.12.*aarch64-linux-gnu" console="ttyAMA0 (PL011)" cpus_from="PSCI CPU_ON"
  ;;
*) echo "usage: $0 [--arch x86_64|aarch64]" >&2; exit 2 ;;
esac

kernel=$(kernelfw/build-kernel.sh --arch "$arch" --print-path)
if [[ ! -f $kernel ]]; then
  echo "FAIL: no $arch kernel at $kernel (build it: $build)"
  echo "0 passed, 1 failed"
  exit 1
fi
for tool in "${qemu[0]}" cpio gzip zig; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/setup.sh)"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d "/tmp/zkrun-kernelfw-boot-$arch.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
zig build test-guests --summary none && cp "zig-out/test-guests/kernelfw-boot-init-$arch" "$work/root/init" || {
  echo "FAIL: building the test init (zig build test-guests)"; echo "0 passed, 1 failed"; exit 1; }
(cd "$work/root" && echo init | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.gz"

passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

start=$(date +%s.%N)
timeout --kill-after=5 "$timeout_s" "${qemu[@]}" -m 256 -smp 2 \
  -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.gz" -append "$append" </dev/null >"$work/console.log" 2>&1
rc=$?
end=$(date +%s.%N)
sed 's/^/    | /' "$work/console.log" | grep -E '\| (check|info|ZKRUN|Linux version|Kernel panic|.*(error|fail|BUG|virtio))' |
  head -80

if [[ $rc -eq 124 || $rc -eq 137 ]]; then
  bad "QEMU did not exit within ${timeout_s}s (killed); last console lines:"
  tail -20 "$work/console.log" | sed 's/^/    | /'
else
  [[ $rc -eq 0 ]] && ok "QEMU exited by itself (status 0) in $(printf '%.1f' "$(echo "$end - $start" | bc)") s" ||
    bad "QEMU exited with status $rc"
fi
grep -q "$banner" "$work/console.log" && ok "$arch kernel banner on $console" || bad "no $arch kernel banner on $console"
grep -q "^ZKRUN-KERNELFW-BOOT-OK" "$work/console.log" && ok "init marker" || bad "init marker missing"
nchecks=$(grep -c "^check " "$work/console.log")
nfail=$(grep -c "^check .* FAIL" "$work/console.log")
[[ $nchecks -ge 30 && $nfail -eq 0 ]] && ok "$nchecks in-guest checks passed" ||
  bad "in-guest checks: $nchecks run, $nfail failed"
grep -q "^info cpus 2" "$work/console.log" && ok "2 CPUs online ($cpus_from)" || bad "expected 2 CPUs: $(grep '^info cpus' "$work/console.log")"
if [[ $arch == aarch64 ]]; then
  grep -q "GICv3" "$work/console.log" && ok "GICv3 driver probed" || bad "no GICv3 in the log"
fi
if grep -q "Kernel panic" "$work/console.log"; then bad "kernel panic"; else ok "no kernel panic"; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
