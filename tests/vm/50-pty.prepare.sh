#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the C API programs and
# the busybox rootfs the terminal tests (tests/vm/5x-pty-*.test.sh) use, so nothing compiles
# under emulation: tests/native/capi/vm-build.sh's examples, and tests/vm/50-pty-stop.c
# (tests/vm/vm-prog-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/native/capi/vm-build.sh >/dev/null
tests/vm/vm-prog-build.sh 50-pty-stop
