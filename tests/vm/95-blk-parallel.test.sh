#!/usr/bin/env bash
# The raw device under concurrent load from the guest's own block layer: four writers and four
# readers at once with O_DIRECT on separate regions (served by the device's worker pool), read
# back with their checksums; a read across the end of the disk stops at the end; blkdiscard of
# the whole device reads back as zeros; GET_ID, BLKGETSIZE64 and the queue limits are what the
# device advertises. (A guest that builds malformed virtio requests itself needs /dev/mem or a
# module, which our guest kernel does not have: those cases are covered by the unit tests and
# the device fuzzer in tests/native/blk-fuzz.sh, which drive the same device code.)
source "$(dirname "$0")/90-blk-common.sh"
truncate -s 64M "$work/raw.img"
script='set -e
blockdev --getsize64 /dev/vda
cat /sys/block/vda/queue/max_segments /sys/block/vda/queue/discard_max_bytes
mkdir -p /tmp/p && mount -t tmpfs tmpfs /tmp/p
for i in 0 1 2 3; do dd if=/dev/urandom of=/tmp/p/src$i bs=1M count=8 2>/dev/null; done
for i in 0 1 2 3; do dd if=/tmp/p/src$i of=/dev/vda bs=1M seek=$((i * 16)) oflag=direct 2>/dev/null & done; wait
for i in 0 1 2 3; do dd if=/dev/vda of=/tmp/p/back$i bs=1M skip=$((i * 16)) count=8 iflag=direct 2>/dev/null & done; wait
for i in 0 1 2 3; do cmp /tmp/p/src$i /tmp/p/back$i && echo "same$i"; done
echo "tail=$(dd if=/dev/vda bs=512 skip=131071 count=4 2>/dev/null | wc -c)"
blkdiscard /dev/vda
echo "zeros=$(dd if=/dev/vda bs=1M count=64 iflag=direct 2>/dev/null | tr -d "\\000" | wc -c)"
exit 0'
run_vm 20 "$work/root" -disk par "$work/raw.img" raw 0 /bin/sh -c "$script"
expect "the guest ran (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "the disk is 64 MiB" 'grep -qx 67108864 <<<"$out"' "$out"
expect "the guest uses the advertised seg_max (254 segments)" 'grep -qx 254 <<<"$out"' "$out"
expect "four parallel O_DIRECT writers and readers round-trip" '[[ $(grep -c "^same[0-3]$" <<<"$out") -eq 4 ]]' "$out"
expect "a read across the end stops at the end" 'grep -qx "tail=512" <<<"$out"' "$out"
expect "blkdiscard leaves zeros" 'grep -qx "zeros=0" <<<"$out"' "$out"
expect "the host image is sparse after the discard" '[[ $(du -k "$work/raw.img" | cut -f1) -lt 8192 ]]' "$(du -k "$work/raw.img")"
[[ $fails -eq 0 ]]
