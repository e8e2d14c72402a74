#!/usr/bin/env bash
# VMM smoke tests on this machine's /dev/kvm with a hand-made long-mode guest (this /dev/kvm
# cannot run Linux, see TESTING.md): boot with 1 and 2 vCPUs, COM1 output, i8042 exit status,
# two VMs at once in one process, 20 create/start/wait/destroy cycles with fd count and RSS
# flat, and a missing /dev/kvm reported as KvmUnavailable instead of a crash.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
if [[ ! -c /dev/kvm ]]; then echo "vmm-kvm: SKIP: no /dev/kvm on this machine"; exit 77; fi
pass=0 fail=0
check() { # name, condition (as a command), output
  if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; echo "$3" | sed 's/^/     | /'; fi
}
drv=$(tests/vm/boot/build-driver.sh) || { echo "driver build failed"; echo "0 passed, 1 failed"; exit 1; }
# Built here, outside the test host, so the VM tier (tests/vm/1x-vmm-*) finds both up to date.
tests/vm/boot/make-initramfs.sh >/dev/null || { echo "initramfs build failed"; echo "0 passed, 1 failed"; exit 1; }
out=/tmp/zkrun-vmm-native.out

for n in 1 2; do
  : > $out
  o=$($drv boot --tiny --vcpus $n --mem 64 --console-output $out 2>&1); rc=$?
  check "tiny guest, $n vCPU(s): exit status 0 through the i8042" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
  check "tiny guest, $n vCPU(s): COM1 output reached the console output" '[[ $(cat $out) == OK ]]' "$(cat $out)"
done

o=$($drv concurrent --tiny --vcpus 2 --console-output /dev/null 2>&1); rc=$?
check "two VMs at once in one process" '[[ $rc -eq 0 && $o == *"concurrent: a=0 b=0"* ]]' "$o"

o=$($drv cycles --tiny --cycles 20 --vcpus 2 --mem 256 --console-output /dev/null 2>&1); rc=$?
line=$(grep '^cycles:' <<<"$o")
fd0=$(sed -n 's/.*fds_before=\([0-9]*\).*/\1/p' <<<"$line"); fd1=$(sed -n 's/.*fds_after=\([0-9]*\).*/\1/p' <<<"$line")
r0=$(sed -n 's/.*rss_kb_before=\([0-9]*\).*/\1/p' <<<"$line"); r1=$(sed -n 's/.*rss_kb_after=\([0-9]*\).*/\1/p' <<<"$line")
check "20 cycles: fd count unchanged ($fd0 -> $fd1)" '[[ $rc -eq 0 && -n $fd0 && $fd0 -eq $fd1 ]]' "$o"
# Allow 1 MiB of allocator noise; a leaked VM would cost at least its page tables and vCPU pages.
check "20 cycles: RSS flat ($r0 -> $r1 KiB)" '[[ $rc -eq 0 && -n $r0 && $r1 -le $((r0 + 1024)) ]]' "$o"

if command -v unshare >/dev/null; then
  o=$(unshare -m bash -c "mount --bind /dev/null /dev/kvm && $drv nokvm --tiny" 2>&1); rc=$?
  check "/dev/kvm that is not KVM: KvmUnavailable, no crash" '[[ $rc -eq 0 && $o == *"KvmUnavailable"* ]]' "$o"
  o=$(unshare -m bash -c "mount -t tmpfs none /dev && $drv nokvm --tiny" 2>&1); rc=$?
  check "no /dev/kvm at all: KvmUnavailable, no crash" '[[ $rc -eq 0 && $o == *"KvmUnavailable"* ]]' "$o"
fi
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
