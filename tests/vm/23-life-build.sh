#!/usr/bin/env bash
# Builds what tests/vm/23..26 run, once per input version, into the cache the test host shares at
# the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/life): the host program (23-life-vm.c, against
# the installed header and libkrun.so.1), the static guest helper (23-life-guest.c) and a busybox
# root with the helper as /life-guest. Run on the machine by 23-life.prepare.sh so nothing
# compiles under emulation; the tests call it again and find everything built. Prints NAME=PATH
# lines: life_vm, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/zig-out
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/life"
mkdir -p "$dir"
header=$prefix/include/libkrun.h
[[ -e $prefix/lib/libkrun.so.1 && -e $header ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
hash() { cat "$@" | sha256sum | cut -c1-16; }

vm="$dir/life-vm-$(hash tests/vm/23-life-vm.c tests/vm/expect.h "$header" "$0" <(echo "$prefix"))"
if [[ ! -x $vm ]]; then
  # DT_RPATH: also covers libkrun.so's own dlopen("libkrunfw.so.5") beside it.
  cc -std=gnu11 -Wall -Wextra -Werror -o "$vm.tmp.$$" tests/vm/23-life-vm.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -lpthread -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv -f "$vm.tmp.$$" "$vm"
fi
echo "life_vm=$vm"

guest_hash=$(hash tests/vm/23-life-guest.c scripts/mkrootfs.sh "$0")
rootfs="$dir/rootfs-$guest_hash"
if [[ ! -x $rootfs/life-guest ]]; then
  scripts/mkrootfs.sh "$rootfs" >/dev/null
  zig cc -target x86_64-linux-musl -static -O2 -Wall -Wextra -Werror -o "$rootfs/life-guest.tmp" tests/vm/23-life-guest.c
  mv -f "$rootfs/life-guest.tmp" "$rootfs/life-guest"
fi
echo "rootfs=$rootfs"
