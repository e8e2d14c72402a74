#!/usr/bin/env bash
# The bundled kernel (our vmlinux, through krun_set_kernel's ELF path in the VMM) boots with an
# initramfs on 1 vCPU and 256 MiB, runs the test init, which prints through the virtio console
# (hvc0) and reboots; the i8042 reset ends the VM with status 0. The guest sees libkrun's
# implicit devices: balloon (5), rng (4), console (3), and vsock (19) with TSI (tsi_hijack on the cmdline).
source "$(dirname "$0")/boot/common.sh"
out=/tmp/zkrun-vm10.out; : > $out
o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 1 --mem 256 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(tr -d '\r' < $out)
expect "VM exited with status 0 (i8042 reset)" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
expect "init ran and printed through the console" 'grep -q "ZKRUN-TEST done" <<<"$con"' "$con"
expect "guest sees 1 CPU" 'grep -q "ZKRUN-TEST nproc=1$" <<<"$con"' "$con"
kb=$(sed -n 's/.*ZKRUN-TEST MemTotal: *\([0-9]*\) kB.*/\1/p' <<<"$con" | tr -d '\r')
# 256 MiB minus the kernel image and reservations: well above 200 MiB, never above 256 MiB.
expect "MemTotal fits 256 MiB ($kb kB)" '[[ -n $kb && $kb -gt 204800 && $kb -le 262144 ]]' "$con"
expect "cmdline reached the guest, with one virtio_mmio.device per slot, tsi_hijack last (the implicit vsock)" \
  'grep -q "ZKRUN-TEST cmdline=.*rdinit=/init virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 virtio_mmio.device=4K@0xd0002000:7 virtio_mmio.device=4K@0xd0003000:8 tsi_hijack$" <<<"$con"' "$con"
ids=$(sed -n 's/.*ZKRUN-TEST virtio=\(.*\)/\1/p' <<<"$con" | tr ',' '\n' | sort | tr '\n' ' ')
expect "virtio devices balloon, rng, console, vsock ($ids)" '[[ $ids == "0x0003 0x0004 0x0005 0x0013 " ]]' "$con"
[[ $fails -eq 0 ]]
