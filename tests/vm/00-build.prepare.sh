#!/usr/bin/env bash
# Runs first on the machine before the test host boots (tests/run.sh): (re)builds zig-out in the
# shipped build mode (build.zig's default, ReleaseSafe, stripped; what `make build` and `make
# demo` give), so the whole VM tier runs against the library users get: a failure only the
# optimizer exposes cannot hide behind a Debug build left in zig-out (issue 17). Nothing is
# rebuilt when zig-out is already that build. ZKRUN_OPTIMIZE=Debug|ReleaseFast|... overrides,
# for a developer's own runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
kernel=$(kernelfw/build-kernel.sh --print-path)
[[ -f $kernel ]] || { echo "no guest kernel at '$kernel' (make build)" >&2; exit 1; }
mode=${ZKRUN_OPTIMIZE:-}
zig build -Dkernel="$kernel" ${mode:+-Doptimize="$mode"} --summary none
echo "zig-out: libkrun.so.1 built ${mode:-ReleaseSafe (shipped default)}"
