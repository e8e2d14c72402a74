#!/usr/bin/env bash
# Boots our aarch64 guest Image (kernelfw/build-kernel.sh --arch aarch64) under qemu-system-aarch64 TCG
# (-M virt, GICv3, 2 vCPUs, a virtio-mmio rng device) with the same tiny static test init as the
# x86_64 kernel (tests/native/kernelfw/boot_init.zig, cross-built for aarch64): filesystems,
# syscalls, namespaces, seccomp, sockets, the wall clock, then a marker and a PSCI reboot. Runs on
# the machine (the aarch64 tier of tests/run.sh). Passes when every check passed, both CPUs came
# up (PSCI CPU_ON), the GICv3 driver probed and QEMU exited by itself before the hard timeout.
# Not built yet is not a pass: without the Image this fails and says how to build it.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
timeout_s=${KERNELFW_BOOT_TIMEOUT:-180}

image=$(kernelfw/build-kernel.sh --arch aarch64 --print-path)
if [[ ! -f $image ]]; then
  echo "FAIL: no aarch64 kernel at $image (build it: kernelfw/build-kernel.sh --arch aarch64, ~25 min cold on 2 cores)"
  echo "0 passed, 1 failed"
  exit 1
fi
for tool in qemu-system-aarch64 cpio gzip zig; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/setup.sh)"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d /tmp/zkrun-kernelfw-aarch64-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
zig build-exe -target aarch64-linux-none -O ReleaseSmall -fstrip -fsingle-threaded \
  --cache-dir .zig-cache --global-cache-dir "${ZIG_GLOBAL_CACHE_DIR:-$HOME/.cache/zig}" \
  tests/native/kernelfw/boot_init.zig -femit-bin="$work/root/init" || {
  echo "FAIL: building the test init"; echo "0 passed, 1 failed"; exit 1; }
(cd "$work/root" && echo init | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.gz"

passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

start=$(date +%s.%N)
timeout --kill-after=5 "$timeout_s" qemu-system-aarch64 -M virt,gic-version=3 -accel tcg \
  -cpu max,pauth-impdef=on -m 256 -smp 2 \
  -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
  -device virtio-rng-device \
  -kernel "$image" -initrd "$work/initrd.gz" \
  -append "console=ttyAMA0 panic=-1" </dev/null >"$work/console.log" 2>&1
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
grep -q "Linux version 6.12.*aarch64-linux-gnu" "$work/console.log" && ok "aarch64 kernel banner on ttyAMA0 (PL011)" || bad "no aarch64 kernel banner on ttyAMA0"
grep -q "^ZKRUN-KERNELFW-BOOT-OK" "$work/console.log" && ok "init marker" || bad "init marker missing"
nchecks=$(grep -c "^check " "$work/console.log")
nfail=$(grep -c "^check .* FAIL" "$work/console.log")
[[ $nchecks -ge 30 && $nfail -eq 0 ]] && ok "$nchecks in-guest checks passed" ||
  bad "in-guest checks: $nchecks run, $nfail failed"
grep -q "^info cpus 2" "$work/console.log" && ok "2 CPUs online (PSCI CPU_ON)" || bad "expected 2 CPUs: $(grep '^info cpus' "$work/console.log")"
grep -q "GICv3" "$work/console.log" && ok "GICv3 driver probed" || bad "no GICv3 in the log"
if grep -q "Kernel panic" "$work/console.log"; then bad "kernel panic"; else ok "no kernel panic"; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
