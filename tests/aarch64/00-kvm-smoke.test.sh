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
# dmesg is read once into a variable: under pipefail, `dmesg | grep -q` fails whenever grep's early
# exit after a match leaves dmesg to die of SIGPIPE (seen in CI and under load: "no GICv3").
klog=$(dmesg)
kvm_line=$(grep -m1 -o 'kvm \[1\]: .*mode initialized successfully' <<<"$klog")
if [[ -n $kvm_line ]]; then echo "ok   kvm: $kvm_line"
else echo "FAIL the host kernel did not log KVM's hyp/VHE initialization"; fails=1; fi
gic_line=$(grep -m1 -o 'GICv3: [0-9]* SPIs implemented' <<<"$klog")
if [[ -n $gic_line ]]; then echo "ok   GICv3 in the host: $gic_line"
else echo "FAIL no GICv3 in the host's kernel log"; fails=1; fi
hash=$(cat tests/host/kvm-smoke-aarch64.zig tests/host/build-kvm-smoke-aarch64.sh | sha256sum | cut -c1-16)
bin="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/kvm-smoke-aarch64-$hash"
[[ -x $bin ]] || { echo "FAIL no kvm-smoke-aarch64 in the cache (tests/aarch64/00-kvm-smoke.prepare.sh)"; exit 1; }
"$bin" --loop 10000000 --exits 1000 2>&1 || fails=1
[[ $fails -eq 0 ]]
