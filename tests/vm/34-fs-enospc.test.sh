#!/usr/bin/env bash
# A guest that fills the shared directory's filesystem gets ENOSPC and the host carries on: a
# 2 MiB tmpfs shared writable; the guest writes until the write fails, checks the error, frees
# the space and writes again; then a second VM uses the same share.
vm_prog=43-harden-vm
source "$(dirname "$0")/30-fs-common.sh"
[[ $(id -u) -eq 0 ]] || skip "needs root (mount tmpfs)"
mkdir "$work/small"
mount -t tmpfs -o size=2m tmpfs "$work/small" || skip "cannot mount a tmpfs"
script='mkdir -p /mnt && mount -t virtiofs small /mnt || exit 3
dd if=/dev/zero of=/mnt/fill bs=64k count=100 2>/tmp/dd.err; echo "dd=$?"
cat /tmp/dd.err
rm /mnt/fill && echo after > /mnt/after && sync && cat /mnt/after'
out=$(vm share "$work/root" small "$work/small" /bin/sh -c "$script"); rc=$?
expect "the guest ran to its end (status $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "the filling write failed (dd's status is not 0)" '[[ $out == *"dd="* && $out != *"dd=0"* ]]' "$out"
expect "the guest saw ENOSPC" '[[ $out == *"No space left on device"* ]]' "$out"
expect "after freeing space the guest writes again" '[[ $(cat "$work/small/after" 2>/dev/null) == after ]]' "$out"
out=$(vm share "$work/root" small "$work/small" /bin/sh -c 'mount -t virtiofs small /mnt && cat /mnt/after'); rc=$?
expect "a second VM on the same share works (status $rc)" '[[ $rc -eq 0 && $out == *after* ]]' "$out"
[[ $fails -eq 0 ]]
