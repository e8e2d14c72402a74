#!/usr/bin/env bash
# examples/run.ts as documented (deno run --allow-ffi --allow-read --allow-env ... and bun):
# the guest's console streams to stdout and the CLI exits with the guest's status.
source "$(dirname "$0")/../ts/vm-common.sh"
for rt in deno bun; do
  if [[ $rt == deno ]]; then cmd=(deno run --quiet --allow-ffi --allow-read --allow-env); else cmd=(bun); fi
  out=$("${cmd[@]}" examples/run.ts --root "$ROOTFS" --cpus 2 --mem 512 -- /bin/sh -c 'uname -s; exit 4' </dev/null 2>&1); rc=$?
  expect "$rt: run.ts exits with the guest's status 4 (got $rc)" '[[ $rc -eq 4 ]]' "$out"
  expect "$rt: the guest's uname -s (Linux) streamed to stdout" 'grep -q "^Linux" <<<"$out"' "$out"
  # --capture writes the console to a temp file: Deno also needs --allow-write=/tmp for it.
  [[ $rt == deno ]] && cmd+=(--allow-write=/tmp)
  out=$("${cmd[@]}" examples/run.ts --capture --root "$ROOTFS" --env 'A=b c' -- /bin/sh -c 'echo "$A"' </dev/null 2>&1); rc=$?
  expect "$rt: --capture prints the output after exit" '[[ $rc -eq 0 ]] && grep -q "^b c" <<<"$out"' "$out"
done
[[ $fails -eq 0 ]]
