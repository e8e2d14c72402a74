#!/usr/bin/env bash
# qcow2 images made by Debian's qemu-img: a compressed base with an overlay (its backing file)
# as the root disk (read-only, krun_set_root_disk_remount), and a data disk read back with the
# same checksums the raw original has. Then a writable qcow2 data disk (an ext4 image converted
# by qemu-img): the guest writes 64 MiB, reads them back with the same checksum after dropping
# its caches, discards (fstrim) and the host finds `qemu-img check` clean, e2fsck -n clean
# on the converted image and the same bytes in it.
source "$(dirname "$0")/90-blk-common.sh"
command -v qemu-img >/dev/null || skip "no qemu-img (scripts/setup.sh installs qemu-utils)"
truncate -s 128M "$work/root.img"
mkfs.ext4 -q -F -d "$work/root" "$work/root.img" || { echo "mkfs.ext4 -d failed"; exit 1; }
head -c 8M /dev/urandom > "$work/blob"
debugfs -w -R "write $work/blob /blob" "$work/root.img" >/dev/null 2>&1
want=$(sha256sum < "$work/blob" | cut -d' ' -f1)
qemu-img convert -c -f raw -O qcow2 "$work/root.img" "$work/base.qcow2" || { echo "qemu-img convert failed"; exit 1; }
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$work/over.qcow2" || { echo "qemu-img create failed"; exit 1; }
qemu-img check -q "$work/over.qcow2" || { echo "qemu-img check of the new image failed"; exit 1; }
run_vm 8 - -disk root "$work/over.qcow2" qcow2 1 -remount /dev/vda ext4 - /bin/sh -c 'grep " / " /proc/mounts; sha256sum /blob; touch /x; echo "touch=$?"'
expect "the guest booted from the qcow2 overlay (rc $rc)" '[[ $rc -eq 0 ]] && grep -q "^/dev/vda / ext4 ro" <<<"$out"' "$out"
expect "a file read through overlay and compressed base has its checksum" 'grep -q "^$want " <<<"$out"' "$out"
expect "writes give EROFS" 'grep -q "^touch=[1-9]" <<<"$out" && grep -qi "read-only file system" <<<"$out"' "$out"
truncate -s 256M "$work/data.raw"
mkfs.ext4 -q -F "$work/data.raw" || { echo "mkfs.ext4 failed"; exit 1; }
qemu-img convert -f raw -O qcow2 "$work/data.raw" "$work/data.qcow2" || { echo "qemu-img convert failed"; exit 1; }
script='mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d || exit 99
dd if=/dev/urandom of=/mnt/d/blob bs=1M count=64 2>/dev/null || exit 98
dd if=/dev/urandom of=/mnt/d/gone bs=1M count=8 2>/dev/null; sync; rm /mnt/d/gone
echo "w=$(sha256sum /mnt/d/blob)"
sync; fstrim -v /mnt/d; umount /mnt/d || exit 97
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt/d || exit 96
echo "r=$(sha256sum /mnt/d/blob)"
umount /mnt/d; exit 0'
run_vm 6 "$work/root" -disk d "$work/data.qcow2" qcow2 0 /bin/sh -c "$script"
sums
expect "a writable qcow2 data disk: 64 MiB read back with the same checksum (rc $rc)" '[[ $rc -eq 0 && -n $w && $w == "$r" ]]' "$out"
chk=$(qemu-img check "$work/data.qcow2" 2>&1); crc=$?
expect "qemu-img check finds the written image clean" '[[ $crc -eq 0 ]]' "$chk"
qemu-img convert -f qcow2 -O raw "$work/data.qcow2" "$work/data.out" || echo "qemu-img convert back failed"
fsck=$(e2fsck -fn "$work/data.out" 2>&1); frc=$?
expect "e2fsck -n finds the filesystem clean" '[[ $frc -eq 0 ]]' "$fsck"
debugfs -R "dump /blob $work/blob.out" "$work/data.out" 2>/dev/null
expect "the image holds the guest's bytes" '[[ -n $w && "$(sha256sum < "$work/blob.out" | cut -d" " -f1)" == "$w" ]]'
[[ $fails -eq 0 ]]
