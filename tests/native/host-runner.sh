#!/usr/bin/env bash
# tests/host/run, the test-host runner behind the VM tier, in three boots: the contract every
# architecture's host keeps (tests/host/contract-lib.sh: status, streams without CR, same
# directory, writable checkout, /dev/kvm, --timeout gives 124, no kernel gives 125), plus for
# x86_64: `false` gives 1, and a CPU without SVM (so no /dev/kvm inside) is a host failure (125),
# never a pass or a skip.
source "$(dirname "$0")/../host/contract-lib.sh"
host_contract x86_64 x86_64 60000 /nonexistent/vmlinux

out=$(tests/host/run false 2>&1); rc=$?
check "x86_64: tests/host/run false exits 1" '[[ $rc -eq 1 ]]' "$out"
out=$(ZKRUN_HOST_CPU=qemu64,-svm tests/host/run true 2>&1); rc=$?
check "x86_64: a CPU without SVM (no /dev/kvm inside) is a host failure (125)" '[[ $rc -eq 125 && $out == *"no /dev/kvm"* ]]' "$out"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
