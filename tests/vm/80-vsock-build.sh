#!/usr/bin/env bash
# Builds what tests/vm/80..84 run, once per input version, into the cache the test host shares at
# the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vsock): the host program (80-vsock-vm.c,
# against the installed header and libkrun.so.1) and a busybox root with the static guest program
# (80-vsock-guest.zig, Zig, no libc) as /vsock-guest. Run on the machine by 80-vsock.prepare.sh so
# nothing compiles under emulation; the tests call it again and find everything built. Prints
# NAME=PATH lines: vsock_vm, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vsock"
source tests/vm/build-lib.sh
build_c vsock_vm tests/vm/80-vsock-vm.c tests/vm/expect.h tests/vm/file_has.h

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
