#!/usr/bin/env bash
# Root on a raw ext4 image (made by mkfs.ext4 -d from the busybox rootfs) through
# krun_set_root_disk_remount: init mounts /dev/vda and moves it onto /; the workload writes
# there, its exit code still reaches the host, and the image checks clean with the data in it.
source "$(dirname "$0")/90-blk-common.sh"
truncate -s 128M "$work/root.img"
mkfs.ext4 -q -F -d "$work/root" "$work/root.img" || { echo "mkfs.ext4 -d failed"; exit 1; }
script='grep " / " /proc/mounts
echo "root-disk-data" > /written; sync
ls /bin/busybox >/dev/null && echo "busybox=ok"
exit 7'
run_vm 20 - -disk root "$work/root.img" raw 0 -remount /dev/vda ext4 - /bin/sh -c "$script"
expect "the workload's exit code 7 reached the host (rc $rc)" '[[ $rc -eq 7 ]]' "$out"
expect "/ is the ext4 disk" 'grep -q "^/dev/vda / ext4 rw" <<<"$out"' "$out"
expect "the disk's programs run" 'grep -q "^busybox=ok$" <<<"$out"' "$out"
fsck=$(e2fsck -fn "$work/root.img" 2>&1); frc=$?
expect "e2fsck -n finds the root clean" '[[ $frc -eq 0 ]]' "$fsck"
expect "the written file is in the image" '[[ "$(debugfs -R "cat /written" "$work/root.img" 2>/dev/null)" == root-disk-data ]]'
# The same image as a read-only disk without a fstype: init tries each block filesystem the
# kernel knows and mounts read-only (possible because init left the root clean at the end of
# the first boot: a journal that needs replaying cannot be replayed on a read-only disk).
run_vm 5 - -disk root "$work/root.img" raw 1 -remount /dev/vda - - /bin/sh -c 'grep " / " /proc/mounts; cat /written'
expect "a read-only root disk without fstype boots read-only (rc $rc)" '[[ $rc -eq 0 ]] && grep -q "^/dev/vda / ext4 ro" <<<"$out" && grep -q "^root-disk-data$" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
