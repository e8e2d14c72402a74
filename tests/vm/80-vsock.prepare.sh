#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds tests/vm/80..84's host
# program, static guest program and root filesystem into the shared cache (80-vsock-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/vm/80-vsock-build.sh
