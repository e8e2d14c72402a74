#!/usr/bin/env bash
# 20 create/start/wait/destroy cycles of a Linux VM leave the process's fd count and RSS where
# they began (after one warm-up cycle).
source "$(dirname "$0")/boot/common.sh"
o=$($DRV cycles --cycles 20 --kernel "$KERNEL" --format elf --initramfs "$INITRD" --cmdline "$CMDLINE" \
      --vcpus 1 --mem 128 --console-output /dev/null --timeout-ms 300000 2>&1); rc=$?
echo "$o"
line=$(grep '^cycles:' <<<"$o")
fd0=$(sed -n 's/.*fds_before=\([0-9]*\).*/\1/p' <<<"$line"); fd1=$(sed -n 's/.*fds_after=\([0-9]*\).*/\1/p' <<<"$line")
r0=$(sed -n 's/.*rss_kb_before=\([0-9]*\).*/\1/p' <<<"$line"); r1=$(sed -n 's/.*rss_kb_after=\([0-9]*\).*/\1/p' <<<"$line")
expect "20 cycles ran" '[[ $rc -eq 0 && -n $line ]]' "$o"
expect "fd count flat ($fd0 -> $fd1)" '[[ -n $fd0 && $fd0 -eq $fd1 ]]' "$o"
expect "RSS flat ($r0 -> $r1 KiB, 1 MiB slack)" '[[ -n $r0 && $r1 -le $((r0 + 1024)) ]]' "$o"
[[ $fails -eq 0 ]]
