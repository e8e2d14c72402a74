#!/usr/bin/env bash
# krun_append_kernel_cmdline (libkrun 1.x, after 1.19): two appended arguments reach the guest
# kernel's command line in call order, and the workload's own arguments still arrive intact.
vm_prog=43-harden-vm
source "$(dirname "$0")/30-fs-common.sh"
out=$(vm cmdline "$work/root" zkrun.first=1 zkrun.second=two /bin/sh -c 'cat /proc/cmdline; echo "args:$0:$1"' a b); rc=$?
expect "the guest ran (status $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "both arguments, in order, on /proc/cmdline" '[[ $out == *"zkrun.first=1 zkrun.second=two"* ]]' "$out"
expect "the workload's arguments are untouched" '[[ $out == *"args:a:b"* ]]' "$out"
[[ $fails -eq 0 ]]
