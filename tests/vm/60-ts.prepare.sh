#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the busybox rootfs the
# TypeScript VM tests (tests/vm/6*-ts-*.test.sh) boot, in the shared checkout (.tools/ts-rootfs).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/mkrootfs.sh "$PWD/.tools/ts-rootfs" >/dev/null
echo "rootfs: .tools/ts-rootfs"
