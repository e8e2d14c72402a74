#!/usr/bin/env bash
# virtio-fs root in a real guest: files created, renamed, appended, chmod'ed, chown'ed,
# hard-linked, symlinked and deleted in the guest show on the host with the same content, mode,
# owner and links; the guest's exit status comes back through the exit-code ioctl. Set-id bits
# go where Linux clears them (the server does it under FUSE_HANDLE_KILLPRIV_V2): on a write and a
# truncate by an unprivileged guest user (uid 65534 through busybox su) and on a chown; a guest
# root's write of its own set-user-ID file keeps them; file capabilities go on a write.
source "$(dirname "$0")/30-fs-common.sh"
kp=$work/root/kp; mkdir "$kp"
for f in w t c r cap; do echo x >"$kp/$f"; done
chown 65534:65534 "$kp/w" "$kp/t" "$kp/cap"; chmod 6775 "$kp/w"; chmod 4755 "$kp/t" "$kp/c" "$kp/r"
has_setcap=0; command -v setcap >/dev/null && setcap cap_net_raw+ep "$kp/cap" && has_setcap=1
script='set -e; su -s /bin/sh nobody -c "echo z >> /kp/w; : > /kp/t; echo z >> /kp/cap"; chown 65534 /kp/c; echo z >> /kp/r
mkdir /fsx; cd /fsx
echo hello > a; mv a b; echo more >> b; chmod 640 b; chown 1234:4321 b
ln b hard; ln -s b soft; mkdir -p d/e; echo x > d/e/y; rm d/e/y; rmdir d/e d
echo k > keep; touch gone; rm gone; mkfifo fifo; chmod 4755 keep
cat b; ls -l /fsx; sync; exit 42'
out=$(vm "$work/root" /bin/sh -c "$script"); rc=$?
echo "$out" | tail -20
r=$work/root/fsx
expect "the guest's exit status 42 came back (got $rc)" '[[ $rc -eq 42 ]]' "$out"
expect "the guest read back what it wrote" 'grep -q "^more" <<<"$(tr -d "\r" <<<"$out")"' "$out"
expect "renamed + appended content on the host" '[[ "$(cat "$r/b" 2>/dev/null)" == $'"'"'hello\nmore'"'"' ]]'
expect "the old name is gone" '[[ ! -e $r/a ]]'
expect "chmod 640 on the host" '[[ "$(stat -c %a "$r/b" 2>/dev/null)" == 640 ]]'
expect "chown 1234:4321 on the host" '[[ "$(stat -c %u:%g "$r/b" 2>/dev/null)" == 1234:4321 ]]'
expect "hard link: same inode, 2 links" '[[ "$(stat -c %i "$r/b")" == "$(stat -c %i "$r/hard")" && "$(stat -c %h "$r/b")" == 2 ]]'
expect "symlink text is b" '[[ "$(readlink "$r/soft")" == b ]]'
expect "removed files and directories are gone" '[[ ! -e $r/d && ! -e $r/gone ]]'
# The VMM runs as root here, so the guest's setuid bit is stripped (tests/vm/45; libkrun.h).
expect "chmod 4755 gives 755 on the host (set-id stripped as root)" '[[ "$(stat -c %a "$r/keep" 2>/dev/null)" == 755 ]]'
expect "a FIFO was made" '[[ -p $r/fifo ]]'
kp_modes=$(stat -c '%n %a %U' "$kp"/* 2>&1)
expect "uid 65534's append drops setuid and setgid (with group execute) of its file" '[[ $(stat -c %a "$kp/w") == 775 && $(cat "$kp/w") == $'"'"'x\nz'"'"' ]]' "$kp_modes"
expect "uid 65534's truncate (O_TRUNC) drops setuid" '[[ $(stat -c %a "$kp/t") == 755 && ! -s $kp/t ]]' "$kp_modes"
expect "a chown by the guest root drops setuid" '[[ $(stat -c %a:%u "$kp/c") == 755:65534 ]]' "$kp_modes"
expect "the guest root's append to its own setuid file keeps it (CAP_FSETID)" '[[ $(stat -c %a "$kp/r") == 4755 ]]' "$kp_modes"
if [[ $has_setcap == 1 ]]; then
  expect "a write drops the file's capabilities" '[[ -z $(getcap "$kp/cap") && $(cat "$kp/cap") == $'"'"'x\nz'"'"' ]]' "$(getcap "$kp/cap")"
else
  echo "note: no setcap in the test host: the file-capability case did not run"
fi
[[ $fails -eq 0 ]]
