#!/usr/bin/env bash
# virtio-fs data path and confinement in a real guest: a 3 MiB host file reads back intact (big
# READs, max_pages), a 4 MiB guest write lands on the host, a 300-entry directory lists fully
# (several READDIRPLUS replies), and host symlinks that point out of the share (absolute,
# relative, /proc magic) resolve inside the guest's own view, never to the host file.
source "$(dirname "$0")/30-fs-common.sh"
mkdir "$work/outside" && echo "host secret" > "$work/outside/secret"
head -c 3145728 /dev/urandom > "$work/root/big"
ln -s "$work/outside" "$work/root/esc_abs"
ln -s ../../../outside "$work/root/esc_rel"
ln -s /proc/1/root/../outside "$work/root/esc_proc"
sum=$(md5sum < "$work/root/big" | cut -d' ' -f1)
script='cat /esc_abs/secret; echo "abs=$?"
cat /esc_rel/secret; echo "rel=$?"
cat /esc_proc/secret; echo "proc=$?"
echo "md5=$(busybox md5sum /big | cut -d" " -f1)"
dd if=/dev/zero of=/w bs=1048576 count=4 2>/dev/null; echo "dd=$?"
mkdir /many && cd /many && i=0; while [ $i -lt 300 ]; do : > f$i; i=$((i+1)); done
echo "count=$(ls /many | busybox wc -l)"
sync; exit 0'
out=$(vm "$work/root" /bin/sh -c "$script"); rc=$?
out=$(tr -d '\r' <<<"$out"); echo "$out" | tail -20
expect "the guest ran (rc $rc)" '[[ $rc -eq 0 ]]' "$out"
for k in abs rel proc; do
  expect "the $k escape symlink does not reach the host file" 'grep -q "^$k=[1-9]" <<<"$out" && ! grep -q "host secret" <<<"$out"' "$out"
done
expect "3 MiB host file reads back intact" 'grep -q "^md5=$sum$" <<<"$out"' "$out"
expect "4 MiB guest write is on the host" '[[ "$(stat -c %s "$work/root/w" 2>/dev/null)" == 4194304 ]]'
expect "300 entries listed in the guest" 'grep -q "^count=300$" <<<"$out"' "$out"
expect "300 entries on the host" '[[ "$(ls "$work/root/many" | wc -l)" == 300 ]]'
[[ $fails -eq 0 ]]
