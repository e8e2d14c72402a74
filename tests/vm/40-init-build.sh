#!/usr/bin/env bash
# Builds what the init and TSI VM tests (tests/vm/4x-init-*, tests/vm/85..8c-tsi-*) run, once per
# input version: the busybox tree (scripts/mkrootfs.sh, stamped, in the checkout's .tools) and
# the runner (40-init-run.c, tests/vm/vm-prog-build.sh: into the shared cache, with DT_RPATH,
# which also covers libkrun.so's own dlopen("libkrunfw.so.5"): the runs use `env -i`, so
# LD_LIBRARY_PATH would not survive, nor belong in the guest env). Run on the machine by
# tests/vm/40-init.prepare.sh and 85-tsi.prepare.sh so nothing compiles under emulation; the
# tests call it again and find everything built. Prints rootfs=PATH and run=PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$PWD/.tools/init-vm-rootfs
scripts/mkrootfs.sh "$base" >/dev/null
run=$(tests/vm/vm-prog-build.sh 40-init-run)
echo "rootfs=$base"
echo "run=$run"
