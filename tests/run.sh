#!/usr/bin/env bash
# The test runner behind `make test`. Four tiers (see ../shared/TESTING.md):
#   unit   - `zig build test` on this machine;
#   native - every tests/native/*.sh on this machine (C ABI, TS bindings, fuzz smoke, KVM API);
#   vm     - every tests/vm/*.sh, run inside the test host (tests/host/run), where /dev/kvm is
#            real KVM;
#   aarch64 - the aarch64 test host (tests/host/run --arch aarch64) and tests/aarch64/*.
# A suite script may end its output with a line "N passed, N failed[, N skipped]"; its counts are
# added up. A script that prints no such line counts as one test, judged by its exit status.
# The last line printed is the total; the exit status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/zig/bin:$PWD/.tools/js/node_modules/.bin:$PATH"
LOGDIR=${ZKRUN_TEST_LOGS:-$PWD/zig-out/test-logs}
mkdir -p "$LOGDIR"
only=${1:-all}

passed=0 failed=0 skipped=0
failures=()
summary_re='^([A-Za-z_-]+: )?([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$'

# run_suite NAME CMD... : runs a suite, streams nothing, keeps its log, adds its counts.
run_suite() {
  local name=$1; shift
  local log="$LOGDIR/${name//\//_}.log" start=$SECONDS rc
  "$@" >"$log" 2>&1; rc=$?
  local line; line=$(grep -E "$summary_re" "$log" | tail -1)
  local p=0 f=0 s=0
  if [[ -n $line && $line =~ $summary_re ]]; then
    p=${BASH_REMATCH[2]} f=${BASH_REMATCH[3]} s=${BASH_REMATCH[5]:-0}
    # A suite that crashed after printing a clean summary still failed.
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  elif [[ $rc -eq 0 ]]; then p=1; else f=1; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  local verdict=ok; [[ $f -gt 0 ]] && { verdict=FAIL; failures+=("$name"); }
  printf 'test: %-44s %-4s %3d passed %2d failed %2d skipped  %4ds  (%s)\n' \
    "$name" "$verdict" "$p" "$f" "$s" $((SECONDS - start)) "$log"
  if [[ $f -gt 0 ]]; then sed 's/^/    | /' "$log" | tail -40; fi
  if [[ $s -gt 0 ]]; then grep -i 'skip' "$log" | sed 's/^/    skipped: /' | head -20; fi
}

# unit_tests: `zig build test`, reporting how many test cases ran. Zig caches a passing run step,
# so a cached step (nothing changed since it last passed) counts as one.
unit_tests() {
  local out rc
  out=$(zig build test -Dkernel="$(kernelfw/build-kernel.sh --print-path)" --summary all 2>&1); rc=$?
  echo "$out"
  local n cached
  n=$(grep -oE 'run test [a-z_-]+ ([0-9]+) pass' <<<"$out" | awk '{s += $4} END {print s + 0}')
  cached=$(grep -cE 'run test [a-z_-]+ cached' <<<"$out")
  [[ $rc -eq 0 ]] && echo "$((n + cached)) passed, 0 failed"
  return $rc
}

# vm_group PREFIX: the VM tests tests/vm/PREFIX*.test.sh in one test host. Tests that failed
# (or, when the host itself failed, the whole group) run once more in a fresh host, announced by
# a RETRY line that make test prints (never silent); the second attempt decides for them and its
# summary line is the group's count. Why: see the VM tier below and the note of 2026-11-30.
vm_group() {
  local rc out failed
  out=$(tests/host/run --timeout "${ZKRUN_VM_TIMEOUT:-3000}" tests/vm/all.sh "$1" 2>&1); rc=$?
  echo "$out"
  [[ $rc -eq 0 ]] && return 0
  failed=$(sed -nE 's/^vm: ([0-9][^ ]*) \(.*\) FAIL.*/\1/p' <<<"$out")
  local passed_first; passed_first=$(grep -cE '^vm: .* ok$' <<<"$out")
  if [[ -z $failed || $rc -eq 124 || $rc -eq 125 ]]; then
    echo "RETRY: VM group $1* failed (exit $rc) in its first test host; the whole group runs once more"
    tests/host/run --timeout "${ZKRUN_VM_TIMEOUT:-3000}" tests/vm/all.sh "$1"
    return
  fi
  echo "RETRY: VM group $1*: $(echo $failed) failed in the first test host; they run once more in a fresh one"
  out=$(tests/host/run --timeout "${ZKRUN_VM_TIMEOUT:-3000}" tests/vm/all.sh $failed 2>&1); rc=$?
  echo "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed'
  local p f; p=$(grep -cE '^vm: .* ok$' <<<"$out"); f=$(grep -cE '^vm: .* (FAIL|SKIPPED)' <<<"$out")
  [[ $rc -ne 0 && $f -eq 0 ]] && f=1
  echo "$((passed_first + p)) passed, $f failed"
  [[ $f -eq 0 ]]
}

if [[ $only == all || $only == unit ]]; then
  run_suite unit/zig-build-test unit_tests
  run_suite unit/zig-fmt zig build fmt-check --summary none
fi
if [[ $only == all || $only == native ]]; then
  for t in tests/native/*.sh; do [[ -e $t ]] && run_suite "native/$(basename "$t" .sh)" "$t"; done
fi
if [[ $only == all || $only == vm ]]; then
  # Builds for the VM tier run here first, at native speed (the test host emulates its CPU): every
  # tests/vm/*.prepare.sh. The host shares the checkout and ~/.cache, so the tests find them done.
  for p in tests/vm/*.prepare.sh; do [[ -x $p ]] && run_suite "vm/prepare-$(basename "$p" .prepare.sh)" "$p"; done
  # One test-host boot per group of VM tests (the first digit of their number: 0x-1x VMM, 2x C
  # API, 3x virtio-fs, 4x init, 5x pty, 6x TypeScript and CLI, 7x crun/podman, 8x vsock and TSI,
  # 9x disks); tests/vm/all.sh prints per-test lines and a total. A host that cannot start fails its group (tests/host/run
  # exits 125): never a skip. Groups, not one boot: the test host's own kernel has crashed under
  # this tier's load (an Oops, "Thread overran stack", in the L1 kernel running nested SVM under
  # QEMU TCG; seen 2026-11-30), which must not take the whole tier down.
  for g in $(ls tests/vm/*.test.sh | xargs -n1 basename | cut -c1 | sort -u); do
    run_suite "vm/test-host-$g" vm_group "$g"
    grep -h '^RETRY' "$LOGDIR/vm_test-host-$g.log" | sed 's/^/    /'
  done
fi

if [[ $only == all || $only == aarch64 ]]; then
  # The aarch64 tier: the aarch64 test host (tests/host/run --arch aarch64: qemu-system-aarch64
  # TCG with EL2 and GICv3, real arm64 KVM inside). Builds run here first (tests/aarch64/*.prepare.sh);
  # then the runner's own contract (two boots) and every tests/aarch64/*.test.sh in one boot.
  # Time-boxed: each boot has --timeout; a host that cannot start fails (125), never a skip.
  for p in tests/aarch64/*.prepare.sh; do [[ -x $p ]] && run_suite "aarch64/prepare-$(basename "$p" .prepare.sh)" "$p"; done
  run_suite aarch64/host-runner tests/aarch64/host-runner.sh
  run_suite aarch64/test-host tests/host/run --arch aarch64 --timeout "${ZKRUN_AARCH64_TIMEOUT:-900}" tests/aarch64/all.sh
fi

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed$([[ $skipped -gt 0 ]] && echo ", $skipped skipped")"
[[ $failed -eq 0 ]]
