#!/usr/bin/env bash
# Two Linux VMs at once in one process (two Machines, two vCPUs each), both exit 0.
source "$(dirname "$0")/boot/common.sh"
out=/tmp/zkrun-vm12.out; : > $out
o=$($DRV concurrent --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 2 --mem 128 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
expect "both VMs exited with status 0" '[[ $rc -eq 0 && $o == *"concurrent: a=0 b=0"* ]]' "$o"
expect "both inits finished" '[[ $(grep -c "ZKRUN-TEST done" $out) -eq 2 ]]' "$(cat $out)"
[[ $fails -eq 0 ]]
