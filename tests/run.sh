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
  report_suite "$name" "$log" "$rc" $((SECONDS - start))
}

# report_suite NAME LOG RC SECS: one line for a finished suite; its counts are added up.
report_suite() {
  local name=$1 log=$2 rc=$3 secs=$4
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
    "$name" "$verdict" "$p" "$f" "$s" "$secs" "$log"
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

# vm_group PREFIX: the VM tests tests/vm/PREFIX*.test.sh in one test host. What did not pass
# there (the tests that failed; when the host itself failed or timed out, every test of the group
# that had not passed yet) runs once more in a fresh host, announced by a RETRY line that make
# test prints (never silent); the second attempt decides for those tests. Tests that passed are
# not run again: a whole-group rerun after a host failure late in a group cost CI 20 minutes.
vm_group() {
  local rc out todo ok
  out=$(tests/host/run --timeout "${ZKRUN_VM_TIMEOUT:-2400}" tests/vm/all.sh "$1" 2>&1); rc=$?
  echo "$out" | grep -v -E "$summary_re"
  ok=$(sed -nE 's/^vm: ([0-9][^ ]*) \(.*\) ok$/\1/p' <<<"$out")
  local passed_first; passed_first=$(grep -c . <<<"$ok")
  if [[ $rc -eq 0 ]]; then echo "$passed_first passed, 0 failed$(skipped_part "$out")"; return 0; fi
  todo=$(for t in tests/vm/"$1"*.test.sh; do n=$(basename "$t" .test.sh); grep -qxF "$n" <<<"$ok" || echo "$n"; done)
  if [[ -z $todo ]]; then # every test passed, yet the host failed afterwards
    echo "RETRY: VM group $1*: every test passed but the host exited $rc; nothing is rerun"
    echo "$passed_first passed, 0 failed"; return 0
  fi
  echo "RETRY: VM group $1*: $(echo $todo) did not pass in the first test host (exit $rc); they run once more in a fresh one"
  out=$(tests/host/run --timeout "${ZKRUN_VM_TIMEOUT:-2400}" tests/vm/all.sh $todo 2>&1); rc=$?
  echo "$out" | grep -v -E "$summary_re"
  local p f; p=$(grep -cE '^vm: .* ok$' <<<"$out"); f=$(grep -cE '^vm: .* FAIL' <<<"$out")
  [[ $rc -ne 0 && $f -eq 0 ]] && f=1
  echo "$((passed_first + p)) passed, $f failed$(skipped_part "$out")"
  [[ $f -eq 0 ]]
}
skipped_part() { local n; n=$(grep -cE '^vm: .* SKIPPED' <<<"$1"); [[ $n -gt 0 ]] && echo ", $n skipped"; }

# vm_groups: every group, ZKRUN_VM_LANES (default 2) test hosts at a time, the longest groups
# first (measured order; unknown groups last); reported in group order when all are done.
# In a full run (`make test`) the native tier (first, beside group 6: it needs no test host, and
# its builds and short tests leave much of the CPU idle) and the aarch64 tier are jobs too, so at
# most two lane jobs run at once.
# Why lanes: a test host is mostly one busy vCPU (its microVM) plus waits, so two hosts on two
# cores finish the tier in much less time than one after the other; more than two hosts at
# once have crashed the test host's kernel here.
vm_groups() {
  local all order g lanes=${ZKRUN_VM_LANES:-2} running=0
  all=$(ls tests/vm/*.test.sh | xargs -n1 basename | cut -c1 | sort -u)
  rm -f "$LOGDIR"/vm_test-host-*.status "$LOGDIR"/aarch64-tier.* "$LOGDIR"/native-tier.*
  order=$(for g in 6 9 3 1 8 4 2 7 5 0; do grep -qx "$g" <<<"$all" && echo "$g"; done
          grep -vx -E '6|9|3|1|8|4|2|7|5|0' <<<"$all")
  # In a full run the aarch64 tier (~5 min, after its kernel built in the background) is one more
  # job here, queued by its length.
  [[ $only == all ]] && order=$(sed 's/^7$/7\naarch64/' <<<"$order")
  [[ $native_lane == 1 ]] && order=$(printf 'native\n%s\n' "$order")
  for g in $order; do
    if [[ $running -ge $lanes ]]; then wait -n; running=$((running - 1)); fi
    if [[ $g == aarch64 || $g == native ]]; then
      tier_job "$g" &
    else (
      local log="$LOGDIR/vm_test-host-$g.log" start=$SECONDS
      vm_group "$g" >"$log" 2>&1; echo "$? $((SECONDS - start))" >"$LOGDIR/vm_test-host-$g.status"
    ) & fi
    running=$((running + 1))
    sleep 5 # two QEMU start-ups at the same instant gain nothing
  done
  wait
  [[ $native_lane == 1 ]] && collect_tier native
  for g in $all; do
    local st; st=$(cat "$LOGDIR/vm_test-host-$g.status" 2>/dev/null || echo "1 0")
    report_suite "vm/test-host-$g" "$LOGDIR/vm_test-host-$g.log" ${st% *} ${st#* }
    grep -h '^RETRY' "$LOGDIR/vm_test-host-$g.log" | sed 's/^/    /'
  done
}

# native_tier: every tests/native/*.sh, one after the other.
native_tier() {
  local t
  for t in tests/native/*.sh; do [[ -e $t ]] && run_suite "native/$(basename "$t" .sh)" "$t"; done
}

# tier_job native|aarch64: that tier as a lane job (a subshell): its lines, counts and failures
# go to $LOGDIR/NAME-tier.{out,counts,failures}; collect_tier NAME prints and adds them.
tier_job() {
  passed=0 failed=0 skipped=0 failures=()
  "${1}_tier" >"$LOGDIR/$1-tier.out" 2>&1
  echo "$passed $failed $skipped" >"$LOGDIR/$1-tier.counts"
  printf '%s\n' "${failures[@]}" >"$LOGDIR/$1-tier.failures"
}
collect_tier() {
  local p f s n
  cat "$LOGDIR/$1-tier.out"
  read -r p f s <"$LOGDIR/$1-tier.counts" || { p=0 f=1 s=0; echo "failed: the $1 tier did not report"; failures+=("$1-tier"); }
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  while read -r n; do [[ -n $n ]] && failures+=("$n"); done <"$LOGDIR/$1-tier.failures"
}

# aarch64_tier: the aarch64 test host (tests/host/run --arch aarch64: qemu-system-aarch64 TCG
# with EL2 and GICv3, real arm64 KVM inside). Our aarch64 kernel boots under plain QEMU first
# (tests/native/kernelfw-qemu-boot.sh --arch aarch64), builds run here (tests/aarch64/*.prepare.sh);
# then the runner's own contract (two boots) and every tests/aarch64/*.test.sh in one boot.
# Time-boxed: each boot has --timeout; a host that cannot start fails (125), never a skip.
aarch64_tier() {
  local p
  if [[ $only == all ]]; then # built in the background since the start (aarch64_kernel_background)
    while [[ ! -f $LOGDIR/aarch64-kernel.status ]]; do sleep 5; done
    local st; st=$(cat "$LOGDIR/aarch64-kernel.status")
    report_suite aarch64/kernel "$LOGDIR/aarch64_kernel.log" "${st% *}" "${st#* }"
  else run_suite aarch64/kernel kernelfw/build-kernel.sh --arch aarch64; fi
  # Our aarch64 kernel under plain QEMU (no zkrun), ~3 s: a kernel that cannot boot shows here.
  run_suite aarch64/kernelfw-qemu-boot tests/native/kernelfw-qemu-boot.sh --arch aarch64
  # libkrunfw.5.dylib for macOS bundles this kernel (~1.5 min cold: one more aarch64-macos build).
  run_suite aarch64/cross-macos-krunfw tests/aarch64/cross-macos-krunfw.sh
  for p in tests/aarch64/*.prepare.sh; do [[ -x $p ]] && run_suite "aarch64/prepare-$(basename "$p" .prepare.sh)" "$p"; done
  run_suite aarch64/host-runner tests/aarch64/host-runner.sh
  run_suite aarch64/test-host tests/host/run --arch aarch64 --timeout "${ZKRUN_AARCH64_TIMEOUT:-900}" tests/aarch64/all.sh
}

# aarch64_kernel_background: our aarch64 guest kernel (kernelfw/build-kernel.sh --arch aarch64;
# cached, but a fresh machine builds it cold: ~25 min of both cores under nice) starts building at
# once in a full run, so the waits of the unit and native tiers soak up part of it; the aarch64
# tier (a late lane job) waits for it and reports it as aarch64/kernel. A grandchild, not a
# child, so vm_groups' `wait -n` counts only its lanes.
aarch64_kernel_background() {
  rm -f "$LOGDIR/aarch64-kernel.status"
  ( ( start=$SECONDS
      kernelfw/build-kernel.sh --arch aarch64 >"$LOGDIR/aarch64_kernel.log" 2>&1
      echo "$? $((SECONDS - start))" >"$LOGDIR/aarch64-kernel.status" ) & )
}
[[ $only == all ]] && aarch64_kernel_background

if [[ $only == all || $only == unit ]]; then
  run_suite unit/zig-build-test unit_tests
  run_suite unit/zig-fmt zig build fmt-check --summary none
fi
# In a full run the native tier is one of vm_groups' lane jobs (after the VM tier's builds);
# ZKRUN_NATIVE_LANE=0 runs it here first instead, as before (every lane then a test host).
native_lane=0
[[ $only == all && ${ZKRUN_NATIVE_LANE:-1} != 0 ]] && native_lane=1
[[ $only == native || ($only == all && $native_lane == 0) ]] && native_tier
if [[ $only == all || $only == vm ]]; then
  # Builds for the VM tier run here first, at native speed (the test host emulates its CPU): every
  # tests/vm/*.prepare.sh. The host shares the checkout and ~/.cache, so the tests find them done.
  for p in tests/vm/*.prepare.sh; do [[ -x $p ]] && run_suite "vm/prepare-$(basename "$p" .prepare.sh)" "$p"; done
  # One test-host boot per group of VM tests (the first digit of their number: 0x-1x VMM, 2x C
  # API, 3x virtio-fs, 4x init, 5x pty, 6x TypeScript and CLI, 7x crun/podman, 8x vsock and TSI,
  # 9x disks); tests/vm/all.sh prints per-test lines and a total. A host that cannot start fails its group (tests/host/run
  # exits 125): never a skip. Groups, not one boot: the test host's own kernel has crashed under
  # this tier's load (an Oops, "Thread overran stack", in the L1 kernel running nested SVM under
  # QEMU TCG; seen 2026-11-30), which must not take the whole tier down. vm_groups runs them in
  # two lanes.
  vm_groups
fi

if [[ $only == aarch64 ]]; then
  aarch64_tier
elif [[ $only == all ]]; then
  # In a full run the aarch64 tier ran as one of vm_groups' lane jobs; its lines come here.
  collect_tier aarch64
fi

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed$([[ $skipped -gt 0 ]] && echo ", $skipped skipped")"
[[ $failed -eq 0 ]]
