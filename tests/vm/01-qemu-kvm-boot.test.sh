#!/usr/bin/env bash
# Inside the test host: QEMU (-accel kvm, microvm) boots the bundled kernel with a tiny busybox
# initramfs to its init's marker and exits 0 — the baseline our own VMM must match
# (tests/host/qemu-kvm-boot.sh does the boot; its timings go to BENCHMARKS.md via make bench).
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ -c /dev/kvm ]] || { echo "SKIP: no /dev/kvm (run inside the test host: tests/host/run)"; exit 77; }
out=$(tests/host/qemu-kvm-boot.sh 1 2>&1); rc=$?
echo "$out"
[[ $rc -eq 0 ]] || { echo "FAIL QEMU -accel kvm did not boot the kernel to its init marker"; exit 1; }
grep -q '^ZKRUN-QEMU-KVM-BOOT-OK cpus=1 MemTotal: ' <<<"$out" || { echo "FAIL marker line malformed"; exit 1; }
echo "ok   QEMU -accel kvm booted the bundled kernel to its init and exited"
