#!/usr/bin/env bash
# Runs on the machine before the test host boots: builds the TSI VM tests' guest program
# (85-tsi-probe.c, static, musl) into .tools, keyed by its source, and their runner and busybox
# rootfs (tests/vm/40-init-build.sh, shared with the init tests), so the emulated test host
# compiles nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
probe=$PWD/.tools/tsi-probe-$(cat tests/vm/85-tsi-probe.c | sha256sum | cut -c1-16)
if [[ ! -x $probe ]]; then
  zig cc -target x86_64-linux-musl -static -O2 -Wall -Wextra -o "$probe.tmp" tests/vm/85-tsi-probe.c
  mv "$probe.tmp" "$probe"
fi
echo "tsi: probe $probe"
tests/vm/40-init-build.sh
