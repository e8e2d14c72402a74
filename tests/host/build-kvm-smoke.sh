#!/usr/bin/env bash
# Builds tests/host/kvm-smoke.c (once per source version) and prints the binary's path:
# ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/kvm-smoke-<hash>. The cache is shared writable with the
# test host at the same path, so a binary built on the machine is reused inside it.
set -euo pipefail
src="$(cd "$(dirname "$0")" && pwd)/kvm-smoke.c"
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host"
out="$dir/kvm-smoke-$(cat "$src" "$0" | sha256sum | cut -c1-16)"
if [[ ! -x $out ]]; then
  mkdir -p "$dir"
  cc -O2 -std=c11 -Wall -Wextra -Werror -o "$out.tmp.$$" "$src"
  mv -f "$out.tmp.$$" "$out"
fi
echo "$out"
