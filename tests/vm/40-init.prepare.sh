#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the init VM tests'
# busybox tree and runner (tests/vm/40-init-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/vm/40-init-build.sh >/dev/null
