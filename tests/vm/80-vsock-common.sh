# Sourced by tests/vm/80..84 (inside the test host): finds what 80-vsock-build.sh built and runs
# the host program (80-vsock-vm.c). Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
run_build tests/vm/80-vsock-build.sh
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
