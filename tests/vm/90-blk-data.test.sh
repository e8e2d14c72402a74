#!/usr/bin/env bash
# A raw ext4 data disk (made by mkfs.ext4 on the host): the guest mounts it, writes 64 MiB,
# reads it back after dropping its caches with the same checksum, and the host finds the same
# bytes in the image (debugfs) and a clean filesystem (e2fsck -n). Then krun_add_disk3 with
# direct I/O (O_DIRECT on the host) and each sync mode: the guest sees a write-back cache only
# when flush is offered (KRUN_SYNC_NONE: write through), and the data round-trips.
source "$(dirname "$0")/90-blk-common.sh"
truncate -s 256M "$work/data.img"
mkfs.ext4 -q -F "$work/data.img" || { echo "mkfs.ext4 failed"; exit 1; }
script='mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d || exit 99
cat /sys/block/vda/serial; echo
dd if=/dev/urandom of=/mnt/d/blob bs=1M count=64 2>/dev/null || exit 98
echo "w=$(sha256sum /mnt/d/blob)"
sync; umount /mnt/d || exit 97
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt/d || exit 96
echo "r=$(sha256sum /mnt/d/blob)"
umount /mnt/d; exit 0'
run_vm 20 "$work/root" -disk data1 "$work/data.img" raw 0 /bin/sh -c "$script"
sums
expect "the guest ran (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "the guest sees the block id as the serial" 'grep -q "^data1$" <<<"$out"' "$out"
expect "64 MiB read back with the same checksum" '[[ -n $w && $w == "$r" ]]' "$out"
debugfs -R "dump /blob $work/blob" "$work/data.img" 2>/dev/null
expect "the host image holds the same bytes" '[[ -n $w && "$(sha256sum < "$work/blob" | cut -d" " -f1)" == "$w" ]]'
fsck=$(e2fsck -fn "$work/data.img" 2>&1); frc=$?
expect "e2fsck -n finds the filesystem clean" '[[ $frc -eq 0 ]]' "$fsck"
# krun_add_disk3: direct I/O, sync modes NONE (0) and FULL (2).
script3='cat /sys/block/vda/queue/write_cache
mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d || exit 99
dd if=/dev/urandom of=/mnt/d/b3 bs=1M count=8 2>/dev/null || exit 98
echo "w=$(sha256sum /mnt/d/b3)"; sync; umount /mnt/d || exit 97
echo 3 > /proc/sys/vm/drop_caches; mount -t ext4 /dev/vda /mnt/d || exit 96
echo "r=$(sha256sum /mnt/d/b3)"; umount /mnt/d; exit 0'
for mode in 0:write.through 2:write.back; do
  run_vm 4 "$work/root" -disk3 d3 "$work/data.img" raw 0 1 "${mode%%:*}" /bin/sh -c "$script3"
  sums
  expect "disk3 direct I/O, sync mode ${mode%%:*}: the guest sees ${mode#*:} and 8 MiB round-trip (rc $rc)" \
    '[[ $rc -eq 0 && -n $w && $w == "$r" ]] && grep -q "^${mode#*:}$" <<<"$out"' "$out"
  debugfs -R "dump /b3 $work/b3" "$work/data.img" 2>/dev/null
  expect "disk3 sync mode ${mode%%:*}: the host image holds the bytes" '[[ -n $w && "$(sha256sum < "$work/b3" | cut -d" " -f1)" == "$w" ]]'
done
[[ $fails -eq 0 ]]
