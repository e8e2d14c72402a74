#!/usr/bin/env bash
# Runs on the machine before the test host boots: builds the virtio-net VM tests' runner
# (96-net-vm.c, against zig-out's libkrun) into .tools, keyed by its sources, and the busybox
# rootfs the tests copy, so the emulated test host compiles nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/zig-out
run=$PWD/.tools/net-vm-$(cat tests/vm/96-net-vm.c "$prefix/include/libkrun.h" <(echo "$prefix") | sha256sum | cut -c1-16)
if [[ ! -x $run ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$run.tmp" tests/vm/96-net-vm.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv "$run.tmp" "$run"
fi
echo "net: runner $run"
scripts/mkrootfs.sh "$PWD/.tools/init-vm-rootfs" >/dev/null
