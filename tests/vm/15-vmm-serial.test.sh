#!/usr/bin/env bash
# The legacy console: with console=ttyS0 the guest's 8250 driver drives our 16550A on COM1
# (THR writes, THRE interrupts through an irqfd on IRQ 4) and the bytes reach the console output.
source "$(dirname "$0")/boot/common.sh"
out=/tmp/zkrun-vm15.out; : > $out
o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE_SERIAL" \
      --vcpus 1 --mem 128 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(tr -d '\r' < $out)
expect "VM exited with status 0" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
expect "kernel messages on COM1" 'grep -q "Linux version" <<<"$con"' "$con"
expect "init output on ttyS0" 'grep -q "ZKRUN-TEST done" <<<"$con"' "$con"
[[ $fails -eq 0 ]]
