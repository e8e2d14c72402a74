#!/usr/bin/env bash
# virtio-fs root in a real guest: files created, renamed, appended, chmod'ed, chown'ed,
# hard-linked, symlinked and deleted in the guest show on the host with the same content, mode,
# owner and links; the guest's exit status comes back through the exit-code ioctl.
source "$(dirname "$0")/30-fs-common.sh"
script='set -e; mkdir /fsx; cd /fsx
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
[[ $fails -eq 0 ]]
