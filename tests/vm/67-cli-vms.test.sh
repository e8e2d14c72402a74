#!/usr/bin/env bash
# krunvm-style named VMs under Deno and Bun: `zkrun create` (state in XDG_STATE_HOME, root
# copied into XDG_DATA_HOME), `start` twice (the root persists between starts; the exit status
# comes back; a command after -- replaces the stored one), `list`, `rm`.
source "$(dirname "$0")/../ts/vm-common.sh"
IMAGES=$PWD/.tools/cli-images
[[ -d $IMAGES/layout ]] || skip "no $IMAGES (tests/vm/66-cli.prepare.sh builds them)"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for rt in deno bun; do
  if [[ $rt == deno ]]; then z=(deno run --quiet --allow-ffi --allow-read --allow-write --allow-env cli/zkrun.ts)
  else z=(bun cli/zkrun.ts); fi
  export XDG_CACHE_HOME=$T/$rt/cache XDG_DATA_HOME=$T/$rt/data XDG_STATE_HOME=$T/$rt/state
  out=$("${z[@]}" create --name box -e WRITE=one --cpus 2 "$IMAGES/layout" -- 5 2>&1); rc=$?
  expect "$rt: create" '[[ $rc -eq 0 ]] && "${z[@]}" list | grep -q "^box"' "$out"
  out=$("${z[@]}" start box </dev/null 2>&1 | tr -d '\r'); rc=${PIPESTATUS[0]}
  expect "$rt: first start: stored command, exit 5 (got $rc)" '[[ $rc -eq 5 ]] && grep -q "^persist: one $" <<<"$out"' "$out"
  out=$("${z[@]}" start box -- 6 </dev/null 2>&1 | tr -d '\r'); rc=${PIPESTATUS[0]}
  expect "$rt: second start: the root persisted, -- 6 replaced Cmd (exit 6, got $rc)" '[[ $rc -eq 6 ]] && grep -q "^persist: one one $" <<<"$out"' "$out"
  out=$("${z[@]}" rm box 2>&1); rc=$?
  expect "$rt: rm" '[[ $rc -eq 0 && ! -e $XDG_DATA_HOME/zkrun/vms/box ]] && ! "${z[@]}" list | grep -q "^box"' "$out"
done
[[ $fails -eq 0 ]]
