#!/usr/bin/env bash
# tests/host/run --arch aarch64 (runs on the machine), in two boots: a command's exit status comes
# back, its stdout/stderr stream back separately and unmangled, it runs in the same directory
# on an aarch64 kernel with the checkout writable and /dev/kvm present; a hung command is killed
# at --timeout with status 124; a host that cannot start (no kernel) is status 125, never a pass.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd -P)
pass=0 fail=0
check() { # name, condition, context
  if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; echo "$3" | tail -30 | sed 's/^/     | /'; fi
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
probe="tmp/host-runner-aarch64-probe.$$"
mkdir -p tmp && rm -f "$probe"
trap 'rm -f "$probe" "$probe.err"' EXIT

t0=$(ms)
out=$(tests/host/run --arch aarch64 --timeout 300 sh -c 'printf "line1\nline2\n"; echo to-stderr >&2; pwd; uname -m; [ -c /dev/kvm ] && echo kvm-present; echo written > "$1"; exit 3' sh "$probe" 2>"$probe.err"); rc=$?
t1=$(ms)
err=$(cat "$probe.err")
check "a command's status comes back (exit 3 -> $rc; $((t1 - t0)) ms, boot included)" '[[ $rc -eq 3 ]]' "$out"$'\n'"$err"
check "stdout streamed back without CR: same cwd, aarch64, /dev/kvm" '[[ $out == $'"'"'line1\nline2\n'"'"'"$top"$'"'"'\naarch64\nkvm-present'"'"' ]]' "$(printf '%q' "$out")"
check "stderr streamed back separately" '[[ $err == to-stderr ]]' "$err"
check "checkout is writable at the same path" '[[ $(cat "$probe" 2>/dev/null) == written ]]' "$(ls -la tmp)"

t0=$(ms)
out=$(tests/host/run --arch aarch64 --timeout 5 sleep 1000 2>&1); rc=$?
t1=$(ms)
check "a hung command is killed at --timeout 5: status 124 after $((t1 - t0)) ms" '[[ $rc -eq 124 && $((t1 - t0)) -lt 120000 ]]' "$out"
check "the timeout is reported" '[[ $out == *"timed out after 5 s"* ]]' "$out"

out=$(ZKRUN_HOST_KERNEL=/nonexistent/Image tests/host/run --arch aarch64 true 2>&1); rc=$?
check "a missing kernel is a host failure (125)" '[[ $rc -eq 125 && $out == *"test host failed"* ]]' "$out"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
