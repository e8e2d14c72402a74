#!/usr/bin/env bash
# Runs on the machine before the test host boots: builds the TSI VM tests' guest program
# (static, musl) and runner (against zig-out's libkrun) into .tools, keyed by their sources,
# so the emulated test host compiles nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
prefix=$PWD/zig-out
probe=$PWD/.tools/tsi-probe-$(cat tests/vm/85-tsi-probe.c | sha256sum | cut -c1-16)
if [[ ! -x $probe ]]; then
  zig cc -target x86_64-linux-musl -static -O2 -Wall -Wextra -o "$probe.tmp" tests/vm/85-tsi-probe.c
  mv "$probe.tmp" "$probe"
fi
run=$PWD/.tools/tsi-run-$(cat tests/vm/85-tsi-run.c "$prefix/include/libkrun.h" <(echo "$prefix") | sha256sum | cut -c1-16)
if [[ ! -x $run ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$run.tmp" tests/vm/85-tsi-run.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv "$run.tmp" "$run"
fi
echo "tsi: probe $probe, runner $run"
# The busybox rootfs the tests copy (made here too: .tools may lie outside the checkout, which
# the test host mounts read-only).
scripts/mkrootfs.sh "$PWD/.tools/init-vm-rootfs" >/dev/null
