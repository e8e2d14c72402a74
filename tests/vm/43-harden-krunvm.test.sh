#!/usr/bin/env bash
# krunvm 0.2.6's exact call sequence (libkrun.md §7.1): create, vm_config, root, an empty port
# map (krunvm always sends one), workdir, exec, start_enter. The workload runs in its workdir
# and its exit code is the process's.
vm_prog=43-harden-vm
source "$(dirname "$0")/30-fs-common.sh"
out=$(vm krunvm "$work/root" /tmp /bin/sh -c 'echo "pwd=$(pwd) host=$HOSTNAME"; exit 42'); rc=$?
expect "krunvm's sequence starts the VM and returns the workload's code (got $rc)" '[[ $rc -eq 42 ]]' "$out"
expect "the workload ran in krunvm's workdir with its env" '[[ $out == *"pwd=/tmp host=vm"* ]]' "$out"
out=$(vm krunvm "$work/root" / /bin/true); rc=$?
expect "exit code 0 too (got $rc)" '[[ $rc -eq 0 ]]' "$out"
[[ $fails -eq 0 ]]
