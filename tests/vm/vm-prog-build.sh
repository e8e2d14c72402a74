#!/usr/bin/env bash
# Builds a VM test's host program, tests/vm/NAME.c against the installed header and libkrun.so.1,
# once per input version, into the cache the test host shares at the same path
# (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vm-progs), and prints its path. Run on the machine by
# 30-fs.prepare.sh and 90-blk.prepare.sh, so the emulated test host compiles nothing (a cc there
# costs seconds of emulated CPU per test); the tests (30-fs-common.sh, 90-blk-common.sh) call it
# again and find it built, or build it there when run without the prepare step.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1
prefix=$PWD/zig-out
header=$prefix/include/libkrun.h
[[ -e $prefix/lib/libkrun.so.1 && -e $header ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vm-progs"
mkdir -p "$dir"
prog="$dir/$name-$(cat "tests/vm/$name.c" "$header" tests/vm/vm-prog-build.sh <(echo "$prefix") | sha256sum | cut -c1-16)"
if [[ ! -x $prog ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$prog.tmp.$$" "tests/vm/$name.c" -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,-rpath,"$prefix/lib"
  mv -f "$prog.tmp.$$" "$prog"
fi
echo "$prog"
