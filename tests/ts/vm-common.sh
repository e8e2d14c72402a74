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
# scenario NAME: tests/ts/vm.ts NAME under both runtimes.
scenario() {
  local rt out rc
  for rt in deno bun; do
    if [[ $rt == deno ]]; then out=$("${DENO[@]}" tests/ts/vm.ts "$1" "$ROOTFS" 2>&1); rc=$?
    else out=$("${BUN[@]}" tests/ts/vm.ts "$1" "$ROOTFS" 2>&1); rc=$?; fi
    echo "$out"
    expect "$rt: scenario $1" '[[ $rc -eq 0 ]]' "$out"
  done
}
