#!/usr/bin/env bash
# Vm.startEnter() (krun_start_enter) in a child process: the child becomes the VM, its
# console is the child's stdout, and the child exits with the guest's status.
source "$(dirname "$0")/../ts/vm-common.sh"
for rt in deno bun; do
  if [[ $rt == deno ]]; then cmd=("${DENO[@]}"); else cmd=("${BUN[@]}"); fi
  out=$("${cmd[@]}" examples/run.ts --enter --root "$ROOTFS" -- /bin/sh -c 'echo entered; exit 7' </dev/null 2>&1); rc=$?
  expect "$rt: startEnter exits the child with the guest's status 7 (got $rc)" '[[ $rc -eq 7 ]]' "$out"
  expect "$rt: the guest's output reached the child's stdout" 'grep -q "^entered" <<<"$out"' "$out"
done
[[ $fails -eq 0 ]]
