#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds tests/vm/23..26's host
# program, guest helper and root filesystem into the shared cache (23-life-build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/vm/23-life-build.sh
