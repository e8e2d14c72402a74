#!/usr/bin/env bash
# Inside the aarch64 test host: /dev/kvm is real arm64 KVM (VHE, in QEMU TCG's EL2), with an
# in-kernel GICv3, and the smoke program (tests/host/kvm-smoke-aarch64.zig, prepared on the
# machine) runs guest code: MMIO write/read exits with checked values, a 64-bit loop result,
# timed exits, PSCI SYSTEM_OFF through KVM's in-kernel PSCI.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $(uname -m) == aarch64 ]] || { echo "could not run: not inside the aarch64 test host (tests/host/run --arch aarch64)"; exit 77; }
[[ -c /dev/kvm ]] || { echo "FAIL no /dev/kvm in the aarch64 host"; exit 1; }
fails=0
if dmesg | grep -q 'kvm \[1\]: .*mode initialized successfully'; then
  echo "ok   kvm: $(dmesg | grep -m1 -o 'kvm \[1\]: .*mode initialized successfully')"
else echo "FAIL the host kernel did not log KVM's hyp/VHE initialization"; fails=1; fi
if dmesg | grep -q 'GICv3'; then echo "ok   GICv3 in the host: $(dmesg | grep -m1 -o 'GICv3: [0-9]* SPIs implemented')"
else echo "FAIL no GICv3 in the host's kernel log"; fails=1; fi
hash=$(cat tests/host/kvm-smoke-aarch64.zig tests/host/build-kvm-smoke-aarch64.sh | sha256sum | cut -c1-16)
bin="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/kvm-smoke-aarch64-$hash"
[[ -x $bin ]] || { echo "FAIL no kvm-smoke-aarch64 in the cache (tests/aarch64/00-kvm-smoke.prepare.sh)"; exit 1; }
"$bin" --loop 10000000 --exits 1000 2>&1 || fails=1
[[ $fails -eq 0 ]]
