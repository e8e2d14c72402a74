# Sourced by tests/vm/23..26 (inside the test host): finds the guest kernel and what
# 23-life-build.sh built, runs the host program. Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
run_build tests/vm/23-life-build.sh
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
