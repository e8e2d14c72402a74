# Sourced by tests/native/capi-*.sh: locates the installed library and header and compiles a
# C test against them with the system compiler, as a libkrun client would.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
prefix=${ZKRUN_PREFIX:-$root/zig-out}
if [[ ! -e $prefix/lib/libkrun.so.1 || ! -e $prefix/include/libkrun.h ]]; then
  echo "FAIL: $prefix/lib/libkrun.so.1 or $prefix/include/libkrun.h is missing: run 'make build' (or zig build) first"
  exit 1
fi
work=$(mktemp -d /tmp/zkrun-capi.XXXXXX)
trap 'rm -rf "$work"' EXIT

# capi_cc OUT SRC [extra args]: -Werror, so a header that makes C warn fails the test.
capi_cc() {
  local out=$1 src=$2; shift 2
  cc -std=gnu11 -Wall -Wextra -Werror -o "$out" "$src" -I "$prefix/include" -L "$prefix/lib" \
    -lkrun -Wl,-rpath,"$prefix/lib" "$@"
}

# The krun_* functions declared by the installed header, one per line, sorted.
header_functions() {
  grep -oE '^(int32_t|int)[[:space:]]+krun_[a-z0-9_]+\(' "$prefix/include/libkrun.h" |
    sed -E 's/.*(krun_[a-z0-9_]+)\(/\1/' | sort -u
}
