#!/usr/bin/env bash
# qcow2 images made by Debian's qemu-img: a compressed base with an overlay (its backing file)
# as the root disk (read-only, krun_set_root_disk_remount), and a data disk read back with the
# same checksums the raw original has. A writable qcow2 is refused with EROFS at krun_add_disk2.
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
out=$(vm - -disk root "$work/over.qcow2" qcow2 1 -remount /dev/vda ext4 - /bin/sh -c 'grep " / " /proc/mounts; sha256sum /blob; touch /x; echo "touch=$?"'); rc=$?
out=$(tr -d '\r' <<<"$out"); echo "$out" | tail -8
expect "the guest booted from the qcow2 overlay (rc $rc)" '[[ $rc -eq 0 ]] && grep -q "^/dev/vda / ext4 ro" <<<"$out"' "$out"
expect "a file read through overlay and compressed base has its checksum" 'grep -q "^$want " <<<"$out"' "$out"
expect "writes give EROFS" 'grep -q "^touch=[1-9]" <<<"$out" && grep -qi "read-only file system" <<<"$out"' "$out"
out=$(vm "$work/root" -disk d "$work/over.qcow2" qcow2 0 /bin/true); rc=$?
expect "a writable qcow2 disk is refused with EROFS and a reason" '[[ $rc -ne 0 ]] && grep -q "Read-only file system (krun_add_disk2: qcow2 disks are served read-only" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
