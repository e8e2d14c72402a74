#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the virtio-blk VM tests'
# host program (90-blk-vm.c; vm-prog-build.sh) into the shared cache, so the tests find it built.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/vm/vm-prog-build.sh 90-blk-vm
