#!/usr/bin/env bash
# Builds what tests/vm/1x-vmm-*.test.sh need, on the machine at native speed (the test host
# emulates its CPU): the VMM driver and the test initramfs under zig-out/vmm-test/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
tests/vm/boot/build-driver.sh
tests/vm/boot/make-initramfs.sh
