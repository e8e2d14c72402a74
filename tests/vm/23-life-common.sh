# Sourced by tests/vm/23..26 (inside the test host): finds the guest kernel and what
# 23-life-build.sh built, runs the host program. Exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
prefix=$PWD/zig-out
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || skip "zig-out/lib/libkrun.so.1 not built (zig build)"
[[ -e $prefix/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
built=$(tests/vm/23-life-build.sh) || { echo "FAIL: tests/vm/23-life-build.sh"; exit 1; }
bin() { sed -n "s/^$1=//p" <<<"$built"; }
LIFE_VM=$(bin life_vm)
ROOTFS=$(bin rootfs)
work=$(mktemp -d /tmp/zkrun-life.XXXXXX)
trap 'rm -rf "$work"' EXIT
# life MODE [ROOTFS]: runs the host program; its exit status is the test's. A crash of the
# embedding process (the old "reached unreachable code" abort) shows as a signal here.
life() {
  local rc
  if [[ $# -eq 2 ]]; then timeout 800 "$LIFE_VM" "$1" "$2" "$work"; rc=$?
  else timeout 800 "$LIFE_VM" "$1" "$work"; rc=$?; fi
  if [[ $rc -gt 128 && $rc -ne 124 ]]; then echo "FAIL: the embedding process died (status $rc)"; fi
  for f in "$work"/*.log; do [[ -s $f && $rc -ne 0 ]] && { echo "--- $f"; tail -c 3000 "$f" | tr -d '\r'; }; done
  return $rc
}
