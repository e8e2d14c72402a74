#!/usr/bin/env bash
# Builds tests/vm/50-pty-stop.c against the installed header and libkrun.so.1, once per input
# version, into the cache the test host shares (like tests/native/capi/vm-build.sh). Prints
# pty_stop=PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$PWD/zig-out
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/capi"
mkdir -p "$dir"
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
out="$dir/pty_stop-$(cat tests/vm/50-pty-stop.c "$prefix/include/libkrun.h" "$0" <(echo "$prefix") | sha256sum | cut -c1-16)"
if [[ ! -x $out ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$out.tmp.$$" tests/vm/50-pty-stop.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  mv -f "$out.tmp.$$" "$out"
fi
echo "pty_stop=$out"
