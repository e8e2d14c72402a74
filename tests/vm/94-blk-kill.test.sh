#!/usr/bin/env bash
# Crash consistency: the guest writes to an ext4 data disk and syncs, then the VMM is killed
# with SIGKILL while the guest keeps writing. The image checks clean with e2fsck -n (after the
# journal is replayed, as any mount would: `e2fsck -E journal_only` repairs nothing else) and
# the synced file is there with its checksum.
source "$(dirname "$0")/90-blk-common.sh"
truncate -s 128M "$work/data.img"
mkfs.ext4 -q -F "$work/data.img" || { echo "mkfs.ext4 failed"; exit 1; }
script='mkdir -p /mnt/k && mount -t ext4 /dev/vda /mnt/k || exit 99
cd /mnt/k
dd if=/dev/urandom of=synced bs=1M count=16 2>/dev/null
sha256sum synced; sync; echo SYNCED
i=0; while true; do dd if=/dev/urandom of=unsynced.$i bs=64k count=4 2>/dev/null; i=$((i+1)); done'
# Started directly (no `timeout` wrapper): the SIGKILL below must hit the VMM itself.
"$work/blk-vm" "$work/root" -disk d "$work/data.img" raw 0 /bin/sh -c "$script" </dev/null >"$work/out" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 800); do grep -q SYNCED "$work/out" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.5; done
sleep 2
kill -0 $pid 2>/dev/null; alive=$?
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
out=$(tr -d '\r' < "$work/out"); echo "$out" | tail -5
want=$(sed -n 's/^\([0-9a-f]\{64\}\)  synced$/\1/p' <<<"$out")
expect "the guest synced and was still writing when the VMM was killed" '[[ -n $want && $alive -eq 0 ]]' "$out"
fsck=$(e2fsck -fn "$work/data.img" 2>&1); frc=$?
# A journal that still needs replaying is not an error of ours: replay it, then check strictly.
if [[ $frc -ne 0 ]] && grep -qi "journal" <<<"$fsck"; then
  e2fsck -E journal_only -y "$work/data.img" >/dev/null 2>&1
  fsck2=$(e2fsck -fn "$work/data.img" 2>&1); frc=$?; fsck="$fsck
after journal replay:
$fsck2"
fi
expect "the image checks clean" '[[ $frc -eq 0 ]]' "$fsck"
debugfs -R "dump /synced $work/synced" "$work/data.img" 2>/dev/null
expect "the synced file is there with its checksum" '[[ -n $want && "$(sha256sum < "$work/synced" | cut -d" " -f1)" == "$want" ]]'
[[ $fails -eq 0 ]]
