#!/usr/bin/env bash
# A read-only virtio-fs share (krun_add_virtiofs3(..., read_only=true)) mounted in the guest:
# reading works, every write gives EROFS in the guest, and the host directory is unchanged.
source "$(dirname "$0")/30-fs-common.sh"
mkdir "$work/ro" && echo "host data" > "$work/ro/file" && mkdir "$work/ro/dir"
script='mkdir -p /mnt/ro && mount -t virtiofs ro /mnt/ro || exit 99
cat /mnt/ro/file
echo x > /mnt/ro/new; echo "create=$?"
echo x >> /mnt/ro/file; echo "append=$?"
rm /mnt/ro/file; echo "rm=$?"
mkdir /mnt/ro/d2; echo "mkdir=$?"
chmod 777 /mnt/ro/file; echo "chmod=$?"
mv /mnt/ro/file /mnt/ro/moved; echo "mv=$?"
exit 0'
out=$(vm "$work/root" -ro ro "$work/ro" /bin/sh -c "$script"); rc=$?
out=$(tr -d '\r' <<<"$out"); echo "$out" | tail -20
expect "the guest ran and mounted the share (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
expect "reading works" 'grep -q "^host data$" <<<"$out"' "$out"
for op in create append rm mkdir chmod mv; do
  expect "$op fails in the guest" 'grep -q "^$op=[1-9]" <<<"$out"' "$out"
done
expect "the guest saw EROFS" 'grep -qi "read-only file system" <<<"$out"' "$out"
expect "the host directory is unchanged" '[[ "$(cat "$work/ro/file")" == "host data" && ! -e $work/ro/new && ! -e $work/ro/d2 && "$(stat -c %a "$work/ro/file")" == 644 ]]'
[[ $fails -eq 0 ]]
