#!/usr/bin/env bash
# libkrunfw is found no later than krun_create_ctx: the VMM enters a container root with no
# libkrunfw before it configures and starts the VM, in crun 1.8.1's order (libkrun.so.1 loaded
# on the host, every call after the chroot, libkrun.md §12) and in newer crun's (krun_create_ctx
# on the host, §7.2). The workload's output and exit code come back.
vm_prog=43-harden-vm
source "$(dirname "$0")/30-fs-common.sh"
[[ $(id -u) -eq 0 ]] || skip "needs root (chroot, mknod, mount)"
for order in crun181 crun; do
  cp -a "$work/root" "$work/$order"
  out=$(vm "$order" "$work/$order" /bin/sh -c 'echo "in the guest: $(cat /proc/1/comm 2>/dev/null)"; exit 7'); rc=$?
  expect "$order order: the VM starts in a container without libkrunfw and returns 7 (got $rc)" '[[ $rc -eq 7 ]]' "$out"
  expect "$order order: the workload's output" '[[ $out == *"in the guest:"* ]]' "$out"
  umount -l "$work/$order/proc" 2>/dev/null
done
[[ $fails -eq 0 ]]
