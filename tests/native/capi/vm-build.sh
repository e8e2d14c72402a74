#!/usr/bin/env bash
# Builds what the C API VM tests run, once per input version, into the cache the test host shares
# at the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/capi): the C programs (against the installed
# header and libkrun.so.1) and the VMM tests' initramfs. Run on the machine by
# tests/vm/20-capi.prepare.sh so nothing compiles under emulation; the tests call it again and find
# everything built. Prints NAME=PATH lines: vm_enter, vm_inproc, vm_status, vm_flood, chroot_vm, minimal,
# initrd, rootfs.
set -euo pipefail
cd "$(dirname "$0")/../../.."
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/capi"
source tests/vm/build-lib.sh
build_c vm_enter tests/native/capi/vm_enter.c
vm_h=(tests/native/capi/check.h tests/native/capi/vm.h tests/vm/file_has.h)
build_c vm_inproc tests/native/capi/vm_inproc.c "${vm_h[@]}"
build_c vm_status tests/native/capi/vm_status.c "${vm_h[@]}"
build_c vm_flood tests/native/capi/vm_flood.c "${vm_h[@]}"
build_c chroot_vm examples/chroot_vm.c
build_c minimal examples/minimal.c
initrd="$dir/initramfs-$(hash tests/vm/boot/test_init.zig tests/zig/guest_raw.zig tests/vm/boot/make-initramfs.sh).cpio"
[[ -s $initrd ]] || tests/vm/boot/make-initramfs.sh "$initrd" >/dev/null
echo "initrd=$initrd"
# A busybox root for the examples (22-capi-examples), once scripts/mkrootfs.sh exists.
if [[ -x scripts/mkrootfs.sh ]]; then
  rootfs="$dir/rootfs-$(hash scripts/mkrootfs.sh)"
  [[ -x $rootfs/bin/sh ]] || scripts/mkrootfs.sh "$rootfs" >/dev/null
  echo "rootfs=$rootfs"
fi
