#!/usr/bin/env bash
# Builds what the C API VM tests run, once per input version, into the cache the test host shares
# at the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/capi): the C programs (against the installed
# header and libkrun.so.1) and the VMM tests' initramfs. Run on the machine by
# tests/vm/20-capi.prepare.sh so nothing compiles under emulation; the tests call it again and find
# everything built. Prints NAME=PATH lines: vm_enter, vm_inproc, vm_status, vm_flood, chroot_vm, minimal,
# initrd, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
prefix=$root/zig-out
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/capi"
mkdir -p "$dir"
header=$prefix/include/libkrun.h
[[ -e $prefix/lib/libkrun.so.1 && -e $header ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
hash() { cat "$@" | sha256sum | cut -c1-16; }

build_c() { # NAME SRC
  # The checkout's path is part of the key: the programs carry it as their rpath, and another
  # checkout (a CI clone) may not see this one inside the test host.
  local out="$dir/$1-$(hash "$2" "$header" "$0" <(echo "$prefix"))"
  if [[ ! -x $out ]]; then
    # DT_RPATH (not RUNPATH): it also covers libkrun.so's own dlopen("libkrunfw.so.5"), so the
    # programs find the libkrunfw.so.5 installed next to libkrun.so.1.
    cc -std=gnu11 -Wall -Wextra -Werror -o "$out.tmp.$$" "$2" -I "$prefix/include" -L "$prefix/lib" \
      -lkrun -lpthread -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
    mv -f "$out.tmp.$$" "$out"
  fi
  echo "$1=$out"
}
build_c vm_enter tests/native/capi/vm_enter.c
build_c vm_inproc tests/native/capi/vm_inproc.c
build_c vm_status tests/native/capi/vm_status.c
build_c vm_flood tests/native/capi/vm_flood.c
build_c chroot_vm examples/chroot_vm.c
build_c minimal examples/minimal.c
initrd="$dir/initramfs-$(hash tests/vm/boot/test_init.zig tests/vm/boot/make-initramfs.sh).cpio"
[[ -s $initrd ]] || tests/vm/boot/make-initramfs.sh "$initrd" >/dev/null
echo "initrd=$initrd"
# A busybox root for the examples (22-capi-examples), once scripts/mkrootfs.sh exists.
if [[ -x scripts/mkrootfs.sh ]]; then
  rootfs="$dir/rootfs-$(hash scripts/mkrootfs.sh)"
  [[ -x $rootfs/bin/sh ]] || scripts/mkrootfs.sh "$rootfs" >/dev/null
  echo "rootfs=$rootfs"
fi
