#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the host programs of the
# virtio-fs and hardening VM tests (30-fs-vm.c, 43-harden-vm.c; vm-prog-build.sh) into the
# shared cache, so the tests find them built.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/vm/vm-prog-build.sh 30-fs-vm
tests/vm/vm-prog-build.sh 43-harden-vm
