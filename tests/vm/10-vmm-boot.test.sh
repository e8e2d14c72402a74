#!/usr/bin/env bash
# The bundled kernel (our vmlinux, through krun_set_kernel's ELF path in the VMM) boots with an
# initramfs on 1 vCPU and 256 MiB, runs the test init, which prints through COM1 and reboots;
# the i8042 reset ends the VM with status 0.
source "$(dirname "$0")/boot/common.sh"
out=/tmp/zkrun-vm10.out; : > $out
o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 1 --mem 256 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(cat $out)
expect "VM exited with status 0 (i8042 reset)" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
expect "init ran and printed through the console" 'grep -q "ZKRUN-TEST done" <<<"$con"' "$con"
expect "guest sees 1 CPU" 'grep -q "ZKRUN-TEST nproc=1$" <<<"$con"' "$con"
kb=$(sed -n 's/.*ZKRUN-TEST MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$con" | tr -d '\r')
# 256 MiB minus the kernel image and reservations: well above 200 MiB, never above 256 MiB.
expect "MemTotal fits 256 MiB ($kb kB)" '[[ -n $kb && $kb -gt 204800 && $kb -le 262144 ]]' "$con"
expect "cmdline reached the guest" 'grep -q "ZKRUN-TEST cmdline=.*rdinit=/init" <<<"$con"' "$con"
[[ $fails -eq 0 ]]
