# Sourced first by the VM tests' shared setup files (23-life-common.sh, 30-fs-common.sh,
# 40-init-lib.sh, 80-vsock-common.sh, 85-tsi-lib.sh, 90-blk-common.sh, 96-net-lib.sh,
# tests/native/capi/vm-common.sh; inside the test host): the checkout as working directory, our
# toolchain on PATH, `skip` (exit 77 saying what is missing) for a host without /dev/kvm or a
# checkout without libkrun.so.1 and libkrunfw.so.5 (not asked for when the file sets
# needs_libkrunfw=0 first: it boots a kernel of its own), `expect` (one ok/FAIL line, counted in
# $fails), and `run_build`/`bin` for what a build script built.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
prefix=$PWD/zig-out
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || skip "zig-out/lib/libkrun.so.1 not built (zig build)"
[[ ${needs_libkrunfw:-1} == 0 || -e $prefix/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); [[ -n ${3:-} ]] && echo "$3" | tail -40 | sed 's/^/     | /'; fi
}
# run_build SCRIPT: runs a build script of the VM tests (its prepare step already ran it on the
# machine, so it finds everything built; it builds here when that did not run); `bin NAME` then
# prints the path it gave for NAME.
run_build() { built=$("$1") || { echo "FAIL: $1"; exit 1; }; }
bin() { sed -n "s/^$1=//p" <<<"$built"; }
