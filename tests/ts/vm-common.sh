# Sourced by tests/vm/6*-ts-*.test.sh (inside the test host). Sets ROOTFS (a busybox root from
# scripts/mkrootfs.sh), DENO (deno run with exactly the flags README.md documents) and BUN,
# or exits 77 saying what is missing. Gives expect() and $fails like tests/vm/boot/common.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
[[ -e zig-out/lib/libkrun.so.1 ]] || skip "zig-out/lib/libkrun.so.1 not built"
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
[[ -x scripts/mkrootfs.sh ]] || skip "scripts/mkrootfs.sh (the busybox rootfs) does not exist yet"
# In the shared checkout (gitignored .tools/), built on the machine by tests/vm/60-ts.prepare.sh:
# the test host's /tmp is fresh each boot.
ROOTFS=${ZKRUN_TS_ROOTFS:-$PWD/.tools/ts-rootfs}
[[ -x $ROOTFS/bin/sh ]] || scripts/mkrootfs.sh "$ROOTFS" >/dev/null || { echo "scripts/mkrootfs.sh $ROOTFS failed"; exit 1; }
DENO=(deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env=LIBKRUN_PATH,TMPDIR)
BUN=(bun)
fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); [[ -n ${3:-} ]] && echo "$3" | tail -40 | sed 's/^/     | /'; fi
}
# scenario NAME...: tests/ts/vm.ts NAME... under both runtimes, all of them in one process per
# runtime (each start of a runtime costs 5-30 s in the test host). Each scenario is its own check,
# passed when vm.ts printed "ok   RUNTIME: scenario NAME" (after its last check); with more than
# one, the process's exit status is one more check.
scenario() {
  local rt out rc name list
  list=$(IFS=,; echo "$*")
  for rt in deno bun; do
    if [[ $rt == deno ]]; then out=$("${DENO[@]}" tests/ts/vm.ts "$list" "$ROOTFS" 2>&1); rc=$?
    else out=$("${BUN[@]}" tests/ts/vm.ts "$list" "$ROOTFS" 2>&1); rc=$?; fi
    echo "$out"
    if [[ $# -eq 1 ]]; then expect "$rt: scenario $1" '[[ $rc -eq 0 ]]' "$out"; continue; fi
    for name in "$@"; do
      expect "$rt: scenario $name" 'grep -qxF "ok   $rt: scenario $name" <<<"$out"' "$out"
    done
    expect "$rt: vm.ts $list exited 0 (got $rc)" '[[ $rc -eq 0 ]]' "$out"
  done
}
