#!/usr/bin/env bash
# Boots our guest vmlinux (PVH entry) under QEMU microvm with TCG and a tiny static test init
# (tests/native/kernelfw/boot_init.zig) that checks, from inside the guest, the filesystems,
# syscalls, namespaces, seccomp, sockets and /dev/kvm zkrun relies on, prints a marker and
# reboots. Passes when every check passed, the marker appeared and QEMU exited by itself
# (reboot=t + -no-reboot) before the hard timeout.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
timeout_s=${KERNELFW_BOOT_TIMEOUT:-120}

vmlinux=$(kernelfw/build-kernel.sh --print-path)
if [[ ! -f $vmlinux ]]; then
  echo "FAIL: no kernel at $vmlinux (run: make kernel)"
  echo "0 passed, 1 failed"
  exit 1
fi
for tool in qemu-system-x86_64 cpio gzip zig; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d /tmp/zkrun-kernelfw-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
zig build-exe -target x86_64-linux-none -O ReleaseSmall -fstrip -fsingle-threaded \
  --cache-dir .zig-cache --global-cache-dir "${ZIG_GLOBAL_CACHE_DIR:-$HOME/.cache/zig}" \
  tests/native/kernelfw/boot_init.zig -femit-bin="$work/root/init" || {
  echo "FAIL: building the test init"; echo "0 passed, 1 failed"; exit 1; }
(cd "$work/root" && echo init | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.gz"

passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

# -smp 2: SMP comes up from the MP table (no ACPI in our kernel).
start=$(date +%s.%N)
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -M microvm -accel tcg -cpu max -m 256 -smp 2 \
  -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
  -kernel "$vmlinux" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 reboot=t panic=-1" </dev/null >"$work/console.log" 2>&1
rc=$?
end=$(date +%s.%N)
sed 's/^/    | /' "$work/console.log" | grep -E '\| (check|info|ZKRUN|Linux version|Kernel panic|.*(error|fail|BUG))' |
  head -80

if [[ $rc -eq 124 || $rc -eq 137 ]]; then
  bad "QEMU did not exit within ${timeout_s}s (killed); last console lines:"
  tail -20 "$work/console.log" | sed 's/^/    | /'
else
  [[ $rc -eq 0 ]] && ok "QEMU exited by itself (status 0) in $(printf '%.1f' "$(echo "$end - $start" | bc)") s" ||
    bad "QEMU exited with status $rc"
fi
grep -q "Linux version 6.12" "$work/console.log" && ok "kernel banner on ttyS0" || bad "no kernel banner on ttyS0"
grep -q "^ZKRUN-KERNELFW-BOOT-OK" "$work/console.log" && ok "init marker" || bad "init marker missing"
nchecks=$(grep -c "^check " "$work/console.log")
nfail=$(grep -c "^check .* FAIL" "$work/console.log")
[[ $nchecks -ge 30 && $nfail -eq 0 ]] && ok "$nchecks in-guest checks passed" ||
  bad "in-guest checks: $nchecks run, $nfail failed"
grep -q "^info cpus 2" "$work/console.log" && ok "2 CPUs online (MP table)" || bad "expected 2 CPUs: $(grep '^info cpus' "$work/console.log")"
if grep -q "Kernel panic" "$work/console.log"; then bad "kernel panic"; else ok "no kernel panic"; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
