#!/usr/bin/env bash
# mod.ts under Deno and Bun: arguments and environment reach the guest byte-exact (spaces,
# quotes, backslashes, unicode, empty strings, "$HOME" left unexpanded); the volumes option
# (virtio-fs shares init mounts, one read-only) and the disks option (virtio-blk /dev/vda).
source "$(dirname "$0")/../ts/vm-common.sh"
# init makes the volumes' mount points in the root, and the shared $ROOTFS may be read-only
# here (.tools is the shared toolchain): a copy, as tests/vm/66 does for -v. Both scenarios boot
# the copy, in one process per runtime.
volroot=$(mktemp -d)/root
cp -a "$ROOTFS" "$volroot"
ROOTFS=$volroot scenario args-env volumes-disks
rm -rf "$(dirname "$volroot")"
[[ $fails -eq 0 ]]
