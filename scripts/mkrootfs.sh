#!/usr/bin/env bash
# scripts/mkrootfs.sh DIR — a minimal busybox root filesystem in DIR, for the demo and VM tests:
# /bin/busybox (Debian's busybox-static) with one symlink per applet, a few /etc files, and
# empty /proc /sys /dev /tmp /root /run mount points. Our init comes from libkrun (/init.krun),
# so the tree needs none. Idempotent and fast: a stamp records what built DIR; a second run
# with the same busybox and script only checks it. Prints DIR.
# Environment: ZKRUN_BUSYBOX (default /bin/busybox; must be static).
set -euo pipefail
[[ $# -eq 1 && -n $1 ]] || { echo "usage: scripts/mkrootfs.sh DIR" >&2; exit 2; }
dir=$1
bb=${ZKRUN_BUSYBOX:-/bin/busybox}
# Bump when the layout below changes, so existing trees are refreshed.
layout_version=1

[[ -x $bb ]] || { echo "mkrootfs: $bb missing (apt-get install busybox-static, or make setup)" >&2; exit 1; }
# A dynamic busybox would need the host's libc inside the guest: refuse it rather than boot a
# rootfs whose /bin/sh cannot start.
if readelf -l "$bb" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  echo "mkrootfs: $bb is dynamically linked; install busybox-static" >&2; exit 1
fi

stamp="$dir/.zkrun-rootfs"
want="layout=$layout_version busybox=$(sha256sum "$bb" | cut -d' ' -f1)"
if [[ -f $stamp && $(<"$stamp") == "$want" && -x $dir/bin/busybox && -L $dir/bin/sh ]]; then
  echo "$dir"; exit 0
fi

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp run root var/tmp
chmod 1777 tmp var/tmp
chmod 0700 root
cmp -s "$bb" bin/busybox 2>/dev/null || install -m 0755 "$bb" bin/busybox

# One absolute symlink per applet, at the path busybox itself reports (bin/sh, usr/bin/env…).
# One python3 process when there is one: ~270 `ln` forks take minutes under TCG (test host).
# (A pipe, not process substitution: the test host has no /dev/fd.)
if command -v python3 >/dev/null; then
  bin/busybox --list-full | python3 -c '
import os, sys
for applet in sys.stdin.read().split():
    if applet == "bin/busybox":
        continue
    if os.path.islink(applet) and os.readlink(applet) == "/bin/busybox":
        continue
    os.makedirs(os.path.dirname(applet) or ".", exist_ok=True)
    if os.path.lexists(applet):
        os.remove(applet)
    os.symlink("/bin/busybox", applet)
'
else
  bin/busybox --list-full | while read -r applet; do
    [[ -n $applet && $applet != bin/busybox ]] || continue
    [[ -L $applet && $(readlink "$applet") == /bin/busybox ]] && continue
    mkdir -p "${applet%/*}"
    ln -sfn /bin/busybox "$applet"
  done
fi

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >etc/passwd
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >etc/group
printf '%s\n' '127.0.0.1 localhost' '::1 localhost' >etc/hosts
# krunvm writes the same; with TSI the guest resolves through the host's network.
printf '%s\n' 'nameserver 1.1.1.1' >etc/resolv.conf
printf '%s\n' 'NAME="zkrun busybox rootfs"' 'ID=zkrun' >etc/os-release
echo "$want" >"$stamp"
echo "$dir"
