#!/usr/bin/env bash
# Crash consistency: the guest writes to an ext4 disk and syncs, then the VMM is killed with
# SIGKILL while the guest keeps writing. Three disks: a raw data disk; the root itself on a raw
# image and on a qcow2 overlay (over a compressed qcow2 base, both made by qemu-img) through
# krun_set_root_disk_remount. Afterwards the image checks clean (`qemu-img check` for qcow2;
# e2fsck -n, after the journal is replayed as any mount would: `e2fsck -E journal_only`
# repairs nothing else) and the synced file is there with its checksum.
source "$(dirname "$0")/90-blk-common.sh"
command -v qemu-img >/dev/null || skip "no qemu-img (scripts/setup.sh installs qemu-utils)"
writer='dd if=/dev/urandom of=$D/synced bs=1M count=16 2>/dev/null
sha256sum $D/synced; sync; echo SYNCED
i=0; while true; do dd if=/dev/urandom of=$D/unsynced.$i bs=64k count=4 2>/dev/null; i=$((i+1)); done'

# kill_case NAME IMAGE FORMAT EXT4_IMAGE_FOR_CHECKS FILE_IN_FS VM-ARGS...
kill_case() {
  local name=$1 image=$2 format=$3 ext4=$4 file=$5; shift 5
  # Started directly (no `timeout` wrapper): the SIGKILL below must hit the VMM itself.
  "$work/blk-vm" "$@" </dev/null >"$work/out" 2>&1 &
  local pid=$!
  for _ in $(seq 800); do grep -q SYNCED "$work/out" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done
  sleep 2
  kill -0 $pid 2>/dev/null; local alive=$?
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  local out; out=$(tr -d '\r' < "$work/out"); echo "$out" | tail -3
  local want; want=$(sed -n 's/^\([0-9a-f]\{64\}\)  .*synced$/\1/p' <<<"$out")
  expect "$name: the guest synced and was still writing when the VMM was killed" '[[ -n $want && $alive -eq 0 ]]' "$out"
  if [[ $format == qcow2 ]]; then
    local chk; chk=$(qemu-img check "$image" 2>&1); local crc=$?
    # Exit 3 = leaked clusters only, no corruption: what QCOW2.md allows after a SIGKILL (a cluster
    # allocated for a request in flight). Anything else (2 = corruption) fails.
    expect "$name: qemu-img check finds no corruption (leaks allowed: QCOW2.md)" \
      '[[ $crc -eq 0 || ( $crc -eq 3 && $chk != *ERROR* && $chk != *corrupt* ) ]]' "$chk"
    qemu-img convert -f qcow2 -O raw "$image" "$ext4" || echo "qemu-img convert failed"
  fi
  local fsck; fsck=$(e2fsck -fn "$ext4" 2>&1); local frc=$?
  if [[ $frc -ne 0 ]] && grep -qi "journal" <<<"$fsck"; then
    e2fsck -E journal_only -y "$ext4" >/dev/null 2>&1
    local fsck2; fsck2=$(e2fsck -fn "$ext4" 2>&1); frc=$?; fsck="$fsck
after journal replay:
$fsck2"
  fi
  expect "$name: e2fsck -n finds the filesystem clean" '[[ $frc -eq 0 ]]' "$fsck"
  rm -f "$work/synced"
  debugfs -R "dump $file $work/synced" "$ext4" 2>/dev/null
  expect "$name: the synced file is there with its checksum" '[[ -n $want && "$(sha256sum < "$work/synced" | cut -d" " -f1)" == "$want" ]]'
}

truncate -s 128M "$work/data.img"
mkfs.ext4 -q -F "$work/data.img" || { echo "mkfs.ext4 failed"; exit 1; }
kill_case "raw data disk" "$work/data.img" raw "$work/data.img" /synced \
  "$work/root" -disk d "$work/data.img" raw 0 /bin/sh -c "mkdir -p /mnt/k && mount -t ext4 /dev/vda /mnt/k || exit 99; D=/mnt/k; $writer"

truncate -s 128M "$work/root.img"
mkfs.ext4 -q -F -d "$work/root" "$work/root.img" || { echo "mkfs.ext4 -d failed"; exit 1; }
qemu-img convert -c -f raw -O qcow2 "$work/root.img" "$work/base.qcow2" || { echo "qemu-img convert failed"; exit 1; }
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$work/over.qcow2" || { echo "qemu-img create failed"; exit 1; }
kill_case "raw root disk" "$work/root.img" raw "$work/root.img" /root/synced \
  - -disk root "$work/root.img" raw 0 -remount /dev/vda ext4 - /bin/sh -c "mkdir -p /root; D=/root; $writer"
kill_case "qcow2 root disk (overlay on a compressed base)" "$work/over.qcow2" qcow2 "$work/over.raw" /root/synced \
  - -disk root "$work/over.qcow2" qcow2 0 -remount /dev/vda ext4 - /bin/sh -c "mkdir -p /root; D=/root; $writer"
chk=$(qemu-img check "$work/base.qcow2" 2>&1); crc=$?
expect "the qcow2 base is untouched and clean" '[[ $crc -eq 0 ]]' "$chk"
[[ $fails -eq 0 ]]
