#!/usr/bin/env bash
# SMP without ACPI: with 2 vCPUs the guest finds both CPUs through our MP table and brings the
# second one up (INIT/SIPI through the in-kernel LAPIC), then exits cleanly.
source "$(dirname "$0")/boot/common.sh"
out=/tmp/zkrun-vm11.out; : > $out
o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 2 --mem 256 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(tr -d '\r' < $out)
expect "VM exited with status 0" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
expect "guest sees 2 CPUs" 'grep -q "ZKRUN-TEST nproc=2$" <<<"$con"' "$con"
expect "no XSAVE consistency complaint" '! grep -qi "XSAVE consistency" <<<"$con"' "$con"
[[ $fails -eq 0 ]]
