# Sourced by tests/vm/80..84 (inside the test host): finds what 80-vsock-build.sh built and runs
# the host program (80-vsock-vm.c). Exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
prefix=$PWD/zig-out
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || skip "zig-out/lib/libkrun.so.1 not built (zig build)"
[[ -e $prefix/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
built=$(tests/vm/80-vsock-build.sh) || { echo "FAIL: tests/vm/80-vsock-build.sh"; exit 1; }
bin() { sed -n "s/^$1=//p" <<<"$built"; }
VSOCK_VM=$(bin vsock_vm)
ROOTFS=$(bin rootfs)
work=$(mktemp -d /tmp/zkrun-vsock.XXXXXX)
trap 'rm -rf "$work"' EXIT
# vsock_vm MODE [ARGS...]: runs the host program; its exit status is the test's.
vsock_vm() {
  timeout 800 "$VSOCK_VM" "$ROOTFS" "$work" "$@"; local rc=$?
  [[ $rc -gt 128 && $rc -ne 124 ]] && echo "FAIL: the embedding process died (status $rc)"
  return $rc
}
