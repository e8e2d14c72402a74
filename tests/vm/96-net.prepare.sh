#!/usr/bin/env bash
# Runs on the machine before the test host boots: builds the virtio-net VM tests' runner
# (96-net-vm.c, tests/vm/vm-prog-build.sh) into the shared cache and the busybox rootfs the tests
# copy, so the emulated test host compiles nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=$(tests/vm/vm-prog-build.sh 96-net-vm)
echo "net: runner $run"
scripts/mkrootfs.sh "$PWD/.tools/init-vm-rootfs" >/dev/null
