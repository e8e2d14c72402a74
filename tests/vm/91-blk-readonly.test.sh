#!/usr/bin/env bash
# A read-only disk (krun_add_disk2(..., read_only=true)): the guest sees a read-only device, its
# filesystem mounts read-only, every write gives EROFS (or EPERM/EACCES on the raw device), and
# the image on the host is unchanged, byte for byte.
source "$(dirname "$0")/90-blk-common.sh"
truncate -s 64M "$work/ro.img"
mkfs.ext4 -q -F "$work/ro.img" || { echo "mkfs.ext4 failed"; exit 1; }
debugfs -w -R "write /etc/hostname /file" "$work/ro.img" >/dev/null 2>&1
before=$(sha256sum < "$work/ro.img")
script='cat /sys/block/vda/ro
mkdir -p /mnt/r && mount -t ext4 /dev/vda /mnt/r; echo "mount=$?"
grep " /mnt/r " /proc/mounts
cat /mnt/r/file >/dev/null && echo "read=ok"
echo x > /mnt/r/new; echo "create=$?"
rm /mnt/r/file; echo "rm=$?"
umount /mnt/r
dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync 2>&1; echo "dd=$?"
exit 0'
run_vm 20 "$work/root" -disk ro "$work/ro.img" raw 1 /bin/sh -c "$script"
expect "the guest ran (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "the block device is read-only in the guest" '[[ $(head -1 <<<"$out") == 1 ]]' "$out"
expect "the filesystem mounted read-only" 'grep -q "^/dev/vda /mnt/r ext4 ro" <<<"$out"' "$out"
expect "reading works" 'grep -q "^read=ok$" <<<"$out"' "$out"
expect "create and rm fail" 'grep -q "^create=[1-9]" <<<"$out" && grep -q "^rm=[1-9]" <<<"$out"' "$out"
expect "the guest saw EROFS" 'grep -qi "read-only file system" <<<"$out"' "$out"
expect "writing the raw device fails" 'grep -q "^dd=[1-9]" <<<"$out"' "$out"
expect "the image is unchanged" '[[ "$(sha256sum < "$work/ro.img")" == "$before" ]]'
[[ $fails -eq 0 ]]
