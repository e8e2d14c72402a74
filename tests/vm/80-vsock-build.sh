#!/usr/bin/env bash
# Builds what tests/vm/80..84 run, once per input version, into the cache the test host shares at
# the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vsock): the host program (80-vsock-vm.c,
# against the installed header and libkrun.so.1) and a busybox root with the static guest program
# (80-vsock-guest.zig, Zig, no libc) as /vsock-guest. Run on the machine by 80-vsock.prepare.sh so
# nothing compiles under emulation; the tests call it again and find everything built. Prints
# NAME=PATH lines: vsock_vm, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/zig-out
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vsock"
mkdir -p "$dir"
header=$prefix/include/libkrun.h
[[ -e $prefix/lib/libkrun.so.1 && -e $header ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
hash() { cat "$@" | sha256sum | cut -c1-16; }

vm="$dir/vsock-vm-$(hash tests/vm/80-vsock-vm.c tests/vm/expect.h "$header" "$0" <(echo "$prefix"))"
if [[ ! -x $vm ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$vm.tmp.$$" tests/vm/80-vsock-vm.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -lpthread -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv -f "$vm.tmp.$$" "$vm"
fi
echo "vsock_vm=$vm"

guest_hash=$(hash tests/vm/80-vsock-guest.zig tests/vm/80-vsock-tsi.zig scripts/mkrootfs.sh "$0")
rootfs="$dir/rootfs-$guest_hash"
if [[ ! -x $rootfs/vsock-guest ]]; then
  scripts/mkrootfs.sh "$rootfs" >/dev/null
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  zig build test-guests --summary none >&2
  cp zig-out/test-guests/vsock-guest "$tmp/vsock-guest"
  mv -f "$tmp/vsock-guest" "$rootfs/vsock-guest"
fi
echo "rootfs=$rootfs"
