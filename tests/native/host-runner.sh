#!/usr/bin/env bash
# tests/host/run, the test-host runner behind the VM tier, in several boots: the contract every
# architecture's host keeps (tests/host/contract-lib.sh: status, streams without CR, same
# directory, writable checkout, /dev/kvm, --timeout gives 124, no kernel gives 125), plus for
# x86_64: `false` gives 1, the host's THP mode is the machine's, a CPU without SVM (so no
# /dev/kvm inside) is a host failure (125), never a pass or a skip, and so is an Oops in the
# host's kernel log (one more boot).
source "$(dirname "$0")/../host/contract-lib.sh"
host_contract x86_64 x86_64 60000 /nonexistent/vmlinux

# One boot: `false` gives 1, and the host's transparent huge page mode is this machine's ("never"
# where it has none): zkrun's guest RAM is MADV_HUGEPAGE, so KVM inside maps it as KVM here would.
thp=$(sed -n 's/.*\[\([a-z]*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
[[ -n $thp ]] || thp=never
out=$(tests/host/run sh -c 'cat /sys/kernel/mm/transparent_hugepage/enabled; false' 2>&1); rc=$?
check "x86_64: tests/host/run false exits 1" '[[ $rc -eq 1 ]]' "$out"
check "x86_64: the host's THP mode is this machine's ($thp)" '[[ $out == *"[$thp]"* ]]' "$out"
out=$(ZKRUN_HOST_CPU=qemu64,-svm tests/host/run true 2>&1); rc=$?
check "x86_64: a CPU without SVM (no /dev/kvm inside) is a host failure (125)" '[[ $rc -eq 125 && $out == *"no /dev/kvm"* ]]' "$out"

# The host kernel's Oops that never reaches oops=panic (an Oops in the Oops path, seen in the tsi
# bench) must end the host at once as a host failure, not hang it until the watchdog's timeout.
# Simulated: the same words into the kernel log at a level the host's console shows.
t0=$(ms)
out=$(tests/host/run --timeout 300 sh -c 'echo "<2>Oops: simulated for host-runner.sh" >/dev/kmsg; sleep 250; echo still-running' 2>&1); rc=$?
t1=$(ms)
check "x86_64: a host kernel Oops ends the host as a host failure (125) within 60 s ($((t1 - t0)) ms)" '[[ $rc -eq 125 && $out == *"oopsed"* && $out != *still-running* && $((t1 - t0)) -lt 60000 ]]' "$out"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
