#!/usr/bin/env bash
# Cross-builds tests/host/kvm-smoke-aarch64.zig for aarch64-linux (static, ReleaseSafe: `zig build
# test-guests`), copies it into the cache once per version of the source and this script (Zig is
# pinned), and prints the binary's path:
# ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/kvm-smoke-aarch64-<hash>, hash = the first 16 hex digits
# of sha256(source, this script), which the test inside recomputes without Zig. The cache is shared with the
# aarch64 test host at the same path; runs on the machine (there is no Zig inside that host).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
src=tests/host/kvm-smoke-aarch64.zig
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host"
out="$dir/kvm-smoke-aarch64-$(cat "$src" tests/host/build-kvm-smoke-aarch64.sh | sha256sum | cut -c1-16)"
if [[ ! -x $out ]]; then
  mkdir -p "$dir"
  zig build test-guests --summary none >&2
  cp zig-out/test-guests/kvm-smoke-aarch64 "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
fi
echo "$out"
