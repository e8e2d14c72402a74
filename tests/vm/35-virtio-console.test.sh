#!/usr/bin/env bash
# virtio end to end: a Linux guest (our vmlinux, test initramfs, 1 vCPU) with console=hvc0 finds
# the balloon, rng and console devices on virtio-MMIO, its kernel log and its init's output come
# out through the virtio console (multiport, hvc0) into the krun_set_console_output file.
source "$(dirname "$0")/boot/common.sh"
# loglevel=7: Linux's boot-log replay to hvc0 happens inside hvc_alloc, before virtio_console
# lists the port, so it is dropped (put_chars finds no port); lines logged after that show.
CMDLINE="console=hvc0 reboot=k panic=-1 loglevel=7 rdinit=/init"
out=/tmp/zkrun-vm35.out; : > $out
o=$($DRV boot --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 1 --mem 256 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(tr -d '\r' < $out)
expect "VM exited with status 0 (i8042 reset)" '[[ $rc -eq 0 && $o == *"boot: exit=0"* ]]' "$o"
expect "kernel log lines came through hvc0" 'grep -v "ZKRUN-TEST" <<<"$con" | grep -q "[a-z]"' "$con"
expect "the guest probed virtio-MMIO devices balloon (5), rng (4), console (3)" \
  'grep -Eq "ZKRUN-TEST virtio=.*5" <<<"$con" && grep -Eq "ZKRUN-TEST virtio=.*4" <<<"$con" && grep -Eq "ZKRUN-TEST virtio=.*3" <<<"$con"' "$con"
expect "init wrote to /dev/hvc0" 'grep -q "ZKRUN-TEST hello from pid 1" <<<"$con"' "$con"
expect "init's last line before reboot was not lost" 'grep -q "ZKRUN-TEST done" <<<"$con"' "$con"
expect "no virtio protocol errors (DEVICE_NEEDS_RESET)" '! grep -qi "needs.reset\|virtio.*error" <<<"$con$o"' "$con"
[[ $fails -eq 0 ]]
