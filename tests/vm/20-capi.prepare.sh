#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the C API VM tests'
# programs and initramfs into the shared cache (tests/native/capi/vm-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/native/capi/vm-build.sh
