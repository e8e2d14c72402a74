#!/usr/bin/env bash
# krun_start_enter in a child process (tests/native/capi/vm_enter.c, built with cc against the
# installed header): the child becomes the VM, the guest's console reaches the child's stdout,
# and the child exits with the guest's status (0 after the test init's reboot). Also on 2 vCPUs.
source "$(dirname "$0")/../native/capi/vm-common.sh"
for vcpus in 1 2; do
  out=$(timeout 300 "$(bin vm_enter)" "$KERNEL" "$INITRD" "$CMDLINE" $vcpus 256 </dev/null 2>&1); rc=$?
  expect "$vcpus vCPU(s): child exited with the guest's status 0 (got $rc)" '[[ $rc -eq 0 ]]' "$out"
  expect "$vcpus vCPU(s): the guest's console reached the child's stdout" 'grep -q "ZKRUN-TEST hello from pid 1" <<<"$out"' "$out"
  expect "$vcpus vCPU(s): the guest saw $vcpus CPU(s)" 'grep -q "ZKRUN-TEST nproc=$vcpus" <<<"$out"' "$out"
done
[[ $fails -eq 0 ]]
