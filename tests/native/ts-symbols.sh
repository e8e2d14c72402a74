#!/usr/bin/env bash
# ffi/symbols.ts vs include/libkrun.h vs the built library's exports (nm -D): the TypeScript
# symbol table, the header and libkrun.so.1 must describe the same krun_* functions, with the
# same parameter kinds. Prints one line per mismatch and "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
lib=${LIBKRUN_PATH:-zig-out/lib/libkrun.so.1}
[[ -e $lib ]] || { echo "ts-symbols: $lib not built (run make build)"; exit 1; }
nm_out=$(mktemp); trap 'rm -f "$nm_out"' EXIT
nm -D --defined-only "$lib" >"$nm_out"
deno run --quiet --allow-read tests/ts/abi.ts include/libkrun.h "$nm_out"
