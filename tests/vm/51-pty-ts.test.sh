#!/usr/bin/env bash
# examples/run.ts (the TypeScript CLI) in a real terminal under Deno and Bun, with the shipped
# library: a command sees a terminal of the host's size and its status comes back; an
# interactive busybox shell reads typed input and `exit 6` gives 6. Each run: `stty -g`
# identical before and after, no NUL byte printed. (--enter is krun_start_enter, which
# 50-pty-capi runs through examples/chroot_vm and minimal.)
source "$(dirname "$0")/../ts/vm-common.sh"
work=$(mktemp -d /tmp/zkrun-pty-ts.XXXXXX)
trap 'rm -rf "$work"' EXIT
source tests/vm/50-pty-lib.sh
for rt in deno bun; do
  if [[ $rt == deno ]]; then cmd=(deno run --quiet --allow-ffi --allow-read --allow-env); else cmd=(bun); fi
  pty "$rt-cmd" -- "${cmd[@]}" examples/run.ts --root "$ROOTFS" -- /bin/sh -c 'echo "size=$(stty size)"; exit 4'
  expect "$rt: run.ts command exits 4 (got $rc) on a 30x100 guest terminal" \
    '[[ $rc -eq 4 ]] && grep -q "size=30 100" <<<"$out"' "$out"
  pty "$rt-shell" -e 'zk> ' -s 'read line; echo "got=[$line]"\r' -p 1 -s 'typed input\r' -e 'got=\[typed input\]' \
    -e 'zk> ' -s 'exit 6\r' \
    -- "${cmd[@]}" examples/run.ts --root "$ROOTFS" --env 'PS1=zk> ' --env PATH=/bin:/sbin:/usr/bin -- /bin/sh -i
  expect "$rt: run.ts interactive shell read typed input, exit 6 came back (got $rc)" \
    '[[ $rc -eq 6 ]] && grep -q "^got=\[typed input\]" <<<"$out"' "$out"
done
[[ $fails -eq 0 ]]
