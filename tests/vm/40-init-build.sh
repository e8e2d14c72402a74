#!/usr/bin/env bash
# Builds what the init VM tests (tests/vm/4x-init-*) run, once per input version, into the
# checkout's .tools: the busybox tree (scripts/mkrootfs.sh, stamped) and the runner
# (40-init-run.c against the installed header and libkrun.so.1, keyed by source hash). Run on
# the machine by tests/vm/40-init.prepare.sh so nothing compiles under emulation; the tests call
# it again and find everything built. Prints rootfs=PATH and run=PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/zig-out
base=$PWD/.tools/init-vm-rootfs
scripts/mkrootfs.sh "$base" >/dev/null
# DT_RPATH (not RUNPATH): it also covers libkrun.so's own dlopen("libkrunfw.so.5"), and the
# runs use `env -i`, so LD_LIBRARY_PATH would not survive (nor belong in the guest env).
run=$PWD/.tools/init-vm-run-$(cat tests/vm/40-init-run.c "$prefix/include/libkrun.h" <(echo "$prefix") | sha256sum | cut -c1-16)
if [[ ! -x $run ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$run.tmp.$$" tests/vm/40-init-run.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv -f "$run.tmp.$$" "$run"
fi
echo "rootfs=$base"
echo "run=$run"
