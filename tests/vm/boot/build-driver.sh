#!/usr/bin/env bash
# Builds tests/vm/boot/vmm_driver.zig with `zig build vmm-driver` (build.zig: the baseline CPU,
# since it runs in the test host, whose emulated CPU lacks this machine's AVX-512) and prints its
# path, zig-out/vmm-test/vmm_driver. Zig's cache makes a rebuild with nothing changed a no-op
# (~1 s); inside the test host, where compiling runs under TCG, tests/vm/boot/common.sh calls
# this only when the driver is missing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build vmm-driver --summary none >&2
echo zig-out/vmm-test/vmm_driver
