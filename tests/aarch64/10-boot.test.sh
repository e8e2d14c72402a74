#!/usr/bin/env bash
# Inside the aarch64 test host: the aarch64 backend's boot path (tests/aarch64/boot-harness.zig on
# vmm/aarch64: RAM at 0x80000000 with the Image at its start, our FDT at the end of RAM, the
# in-kernel GICv3, a PSCI vCPU entered with x0 = FDT) boots a real arm64 Linux to its first
# userspace attempt: Debian's arm64 Image (the host's own kernel) with no root and panic=-1 must
# print its banner on our ns16550a (earlycon and the 8250 console from the FDT), find the GICv3
# and the arch timer from the tree, panic for lack of a root and reset through PSCI SYSTEM_RESET.
# Our own aarch64 Image (kernelfw/build-kernel.sh --arch aarch64) boots the same way when it is
# built.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $(uname -m) == aarch64 ]] || { echo "could not run: not inside the aarch64 test host"; exit 77; }
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host"
hash=$(cat tests/aarch64/boot-harness.zig libkrun-c/vmm/ram.zig libkrun-c/vmm/aarch64/Fdt.zig \
  libkrun-c/vmm/aarch64/devicetree.zig libkrun-c/vmm/aarch64/layout.zig libkrun-c/vmm/aarch64/kvm_arm.zig |
  sha256sum | cut -c1-16)
bin="$dir/aarch64-boot-$hash"
[[ -x $bin ]] || { echo "FAIL no $bin (tests/aarch64/10-boot.prepare.sh)"; exit 1; }
image="$dir/aarch64-debian-Image"
[[ -f $image ]] || { echo "FAIL no $image (tests/aarch64/10-boot.prepare.sh)"; exit 1; }
fails=0
log=$(mktemp /tmp/aarch64-boot.XXXXXX)
"$bin" "$image" --mem 256 --timeout 300 \
  --append "console=ttyS0 earlycon=uart8250,mmio,0x40000000 panic=-1 loglevel=7" >"$log" 2>&1
rc=$?
grep -E 'Linux version|GICv3|arch_timer|psci|ttyS0|Kernel panic|aarch64-boot' "$log" | head -30 | sed 's/^/    | /'
chk() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=1; fi; }
chk "the harness ended by a PSCI system event (exit $rc)" '[[ $rc -eq 0 ]] && grep -q "aarch64-boot: system_event reset" "$log"'
chk "kernel banner on our ns16550a (earlycon)" 'grep -q "Linux version 6" "$log"'
chk "the kernel found our PSCI node (method hvc)" 'grep -qi "psci: PSCIv1" "$log" || grep -qi "psci: probing for conduit method from DT" "$log"'
chk "the kernel found the GICv3 distributor from the FDT" 'grep -q "GICv3: .* SPIs implemented" "$log"'
chk "the kernel found the arch timer from the FDT" 'grep -q "arch_timer: cp15 timer(s) running" "$log"'
chk "the 8250 console took over from the FDT's uart@40000000" 'grep -q "40000000.uart: ttyS0 at MMIO 0x40000000" "$log"'
chk "it ran to the root mount and panicked there (no root given)" 'grep -q "Kernel panic" "$log"'
[[ $fails -eq 0 ]] || tail -40 "$log" | sed 's/^/    | /'
rm -f "$log"
[[ $fails -eq 0 ]]
