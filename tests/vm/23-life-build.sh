#!/usr/bin/env bash
# Builds what tests/vm/23..26 run, once per input version, into the cache the test host shares at
# the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/life): the host program (23-life-vm.c, against
# the installed header and libkrun.so.1), the static guest helper (23-life-guest.c) and a busybox
# root with the helper as /life-guest. Run on the machine by 23-life.prepare.sh so nothing
# compiles under emulation; the tests call it again and find everything built. Prints NAME=PATH
# lines: life_vm, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/life"
source tests/vm/build-lib.sh
build_c life_vm tests/vm/23-life-vm.c tests/vm/expect.h tests/vm/file_has.h

guest_hash=$(hash tests/vm/23-life-guest.c scripts/mkrootfs.sh "$0")
rootfs="$dir/rootfs-$guest_hash"
if [[ ! -x $rootfs/life-guest ]]; then
  scripts/mkrootfs.sh "$rootfs" >/dev/null
  zig cc -target x86_64-linux-musl -static -O2 -Wall -Wextra -Werror -o "$rootfs/life-guest.tmp" tests/vm/23-life-guest.c
  mv -f "$rootfs/life-guest.tmp" "$rootfs/life-guest"
fi
echo "rootfs=$rootfs"
