#!/usr/bin/env bash
# krunvm-style named VMs under Deno and Bun: `zkrun create` (state in XDG_STATE_HOME, root
# copied into XDG_DATA_HOME), `start` twice (the root persists between starts; the exit status
# comes back; a command after -- replaces the stored Cmd), `list`, `rm`.
source "$(dirname "$0")/66-cli-lib.sh"
for rt in deno bun; do
  cli_runtime $rt
  zk create --name box -e WRITE=one --cpus 2 "$IMAGES/layout" -- 5
  expect "$rt: create" '[[ $rc -eq 0 ]] && "${z[@]}" list | grep -q "^box"' "$out"
  zk start box
  expect "$rt: first start: the stored command, exit 5 (got $rc)" '[[ $rc -eq 5 ]] && grep -q "^persist: one $" <<<"$out"' "$out"
  zk start box -- 6
  expect "$rt: second start: the root persisted, -- 6 replaced Cmd (exit 6, got $rc)" '[[ $rc -eq 6 ]] && grep -q "^persist: one one $" <<<"$out"' "$out"
  zk rm box
  expect "$rt: rm" '[[ $rc -eq 0 && ! -e $XDG_DATA_HOME/zkrun/vms/box ]] && ! "${z[@]}" list | grep -q "^box"' "$out"
done
[[ $fails -eq 0 ]]
