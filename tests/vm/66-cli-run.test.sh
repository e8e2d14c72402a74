#!/usr/bin/env bash
# `zkrun run` end to end under Deno and Bun (tests/native/cli/mkimage.py's busybox image, built
# by 66-cli.prepare.sh): the image's Entrypoint + Cmd, Env, WorkingDir and User reach the
# workload, whiteouts and the opaque dir are seen in the guest, the exit status comes back, a
# second run reuses the cache, -e/-w/-u and a command after -- override the image, and each run
# gets a fresh writable copy (a write in one run is gone in the next); -v shares a host directory
# (read-write and :ro) with a plain ROOTFS run.
source "$(dirname "$0")/66-cli-lib.sh"
for rt in deno bun; do
  cli_runtime $rt
  zk run "$IMAGES/layout"
  expect "$rt: the image's Cmd (3) is the exit status (got $rc)" '[[ $rc -eq 3 ]]' "$out"
  expect "$rt: Entrypoint ran with Cmd, Env, WorkingDir, User root" 'grep -q "^entry: args=3 GREETING=hello from the image pwd=/work uid=0:0$" <<<"$out"' "$out"
  expect "$rt: whiteouts: no old.txt, no gone" 'grep "^root: " <<<"$out" | grep -q " opq " && ! grep "^root: " <<<"$out" | grep -qE " (old.txt|gone) "' "$out"
  expect "$rt: opaque dir: only c" 'grep -q "^opq: c $" <<<"$out"' "$out"
  expect "$rt: the third layer's file" 'grep -q "^motd: layer three$" <<<"$out"' "$out"
  expect "$rt: a progress line while unpacking" 'grep -q "^zkrun: unpacked layer 3/3" <<<"$out"' "$out"
  zk run -e GREETING=over -e WRITE=first -w /tmp "$IMAGES/layout" -- 0
  expect "$rt: second run reuses the cache; -e, -w, -- override (exit 0, got $rc)" '[[ $rc -eq 0 ]] && grep -q "^zkrun: using cached rootfs" <<<"$out" && ! grep -q unpacking <<<"$out" && grep -q "^entry: args=0 GREETING=over pwd=/tmp uid=0:0$" <<<"$out" && grep -q "^persist: first $" <<<"$out"' "$out"
  zk run "$IMAGES/layout" -- 0
  expect "$rt: each run starts from a fresh copy, removed after" '[[ $rc -eq 0 ]] && ! grep -q "^persist:" <<<"$out" && [[ -z $(ls -A "$XDG_DATA_HOME/zkrun/run") ]]' "$out"
  zk run "$IMAGES/app-layout" -- 9
  expect "$rt: image User app runs as uid 1000 gid 1001 (exit 9, got $rc)" '[[ $rc -eq 9 ]] && grep -q "uid=1000:1001$" <<<"$out"' "$out"
  zk run -u 0:50 "$IMAGES/docker.tar" -- 4
  expect "$rt: a docker archive, -u 0:50 (exit 4, got $rc)" '[[ $rc -eq 4 ]] && grep -q "uid=0:50$" <<<"$out"' "$out"
  # -v on a plain ROOTFS (used in place; a copy: init makes the mount points in it, and the
  # shared $ROOTFS may be read-only here): a writable share and a read-only one.
  mkdir -p "$T/$rt/share" "$T/$rt/ro"; echo from-host >"$T/$rt/ro/file"; cp -a "$ROOTFS" "$T/$rt/root"
  zk run -v "$T/$rt/share:/data" -v "$T/$rt/ro:/mnt/ro:ro" "$T/$rt/root" -- /bin/sh -c \
    'echo guest-wrote >/data/hello; cat /mnt/ro/file; echo x >/mnt/ro/nope && echo RO-WRITABLE; exit 7'
  expect "$rt: -v: the guest wrote to the share, read the read-only one, could not write it (exit 7, got $rc)" \
    '[[ $rc -eq 7 && $(cat "$T/$rt/share/hello" 2>/dev/null) == guest-wrote && ! -e $T/$rt/ro/nope ]] && grep -q "^from-host$" <<<"$out" && ! grep -q RO-WRITABLE <<<"$out"' "$out"
done
[[ $fails -eq 0 ]]
