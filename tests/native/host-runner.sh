#!/usr/bin/env bash
# tests/host/run, the test-host runner behind the VM tier, in four boots: a command's exit status
# comes back (true -> 0, false -> 1), its stdout/stderr stream back unmangled (no CR), it runs in the same
# directory with the checkout writable and /dev/kvm present; a hung command is killed at --timeout
# with a message and status 124; a host that cannot start (no kernel, CPU without SVM so no
# /dev/kvm inside) is reported as status 125 "test host failed", never as a pass or a skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd -P)
pass=0 fail=0
check() { # name, condition, context
  if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; echo "$3" | tail -30 | sed 's/^/     | /'; fi
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
probe="tmp/host-runner-probe.$$"
mkdir -p tmp && rm -f "$probe"
trap 'rm -f "$probe" "$probe.err"' EXIT

t0=$(ms)
out=$(tests/host/run sh -c 'printf "line1\nline2\n"; echo to-stderr >&2; pwd; [ -c /dev/kvm ] && echo kvm-present; echo written > "$1"; exec true' sh "$probe" 2>"$probe.err"); rc=$?
t1=$(ms)
err=$(cat "$probe.err")
check "a command ending in true exits 0 ($((t1 - t0)) ms, boot included)" '[[ $rc -eq 0 ]]' "$out"$'\n'"$err"
check "stdout streamed back without CR" '[[ $out == $'"'"'line1\nline2\n'"'"'"$top"$'"'"'\nkvm-present'"'"' ]]' "$(printf '%q' "$out")"
check "stderr streamed back separately" '[[ $err == to-stderr ]]' "$err"
check "checkout is writable at the same path" '[[ $(cat "$probe" 2>/dev/null) == written ]]' "$(ls -la tmp)"
rm -f "$probe" "$probe.err"

out=$(tests/host/run false 2>&1); rc=$?
check "tests/host/run false exits 1" '[[ $rc -eq 1 ]]' "$out"

t0=$(ms)
out=$(tests/host/run --timeout 5 sleep 1000 2>&1); rc=$?
t1=$(ms)
check "a hung command is killed at --timeout 5: status 124 after $((t1 - t0)) ms" '[[ $rc -eq 124 && $((t1 - t0)) -lt 60000 ]]' "$out"
check "the timeout is reported" '[[ $out == *"timed out after 5 s"* ]]' "$out"

out=$(ZKRUN_HOST_KERNEL=/nonexistent/vmlinux tests/host/run true 2>&1); rc=$?
check "a missing kernel is a host failure (125)" '[[ $rc -eq 125 && $out == *"test host failed"* ]]' "$out"
out=$(ZKRUN_HOST_CPU=qemu64,-svm tests/host/run true 2>&1); rc=$?
check "a CPU without SVM (no /dev/kvm inside) is a host failure (125)" '[[ $rc -eq 125 && $out == *"no /dev/kvm"* ]]' "$out"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
