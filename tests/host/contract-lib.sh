# Sourced by tests/native/host-runner.sh (x86_64) and tests/aarch64/host-runner.sh: the checks of
# tests/host/run's contract that hold for every --arch, so both architectures are held to the same
# words. Runs on the machine; each call of host_contract boots the host twice and fails one start.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
top=$(pwd -P)
pass=0 fail=0
check() { # name, condition, context
  if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; echo "$3" | tail -30 | sed 's/^/     | /'; fi
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# host_contract ARCH UNAME_M HUNG_LIMIT_MS MISSING_KERNEL: a command's status comes back (exit 3),
# its stdout/stderr stream back separately without CR, it runs in the same directory on a UNAME_M
# kernel with the checkout writable and /dev/kvm present; a hung command is killed at --timeout 5
# with status 124 (within HUNG_LIMIT_MS, boot included); a missing kernel is a host failure (125).
host_contract() {
  local arch=$1 machine=$2 limit=$3 missing=$4 out err rc t0 t1
  local probe="tmp/host-runner-$arch-probe.$$"
  mkdir -p tmp && rm -f "$probe"
  t0=$(ms)
  out=$(tests/host/run --arch "$arch" --timeout 300 sh -c 'printf "line1\nline2\n"; echo to-stderr >&2; pwd; uname -m; [ -c /dev/kvm ] && echo kvm-present; echo written > "$1"; exit 3' sh "$probe" 2>"$probe.err"); rc=$?
  t1=$(ms)
  err=$(cat "$probe.err")
  check "$arch: a command's status comes back (exit 3 -> $rc; $((t1 - t0)) ms, boot included)" '[[ $rc -eq 3 ]]' "$out"$'\n'"$err"
  check "$arch: stdout streamed back without CR: same cwd, $machine, /dev/kvm" '[[ $out == $'"'"'line1\nline2\n'"'"'"$top"$'"'"'\n'"'"'"$machine"$'"'"'\nkvm-present'"'"' ]]' "$(printf '%q' "$out")"
  check "$arch: stderr streamed back separately" '[[ $err == to-stderr ]]' "$err"
  check "$arch: checkout is writable at the same path" '[[ $(cat "$probe" 2>/dev/null) == written ]]' "$(ls -la tmp)"
  rm -f "$probe" "$probe.err"

  t0=$(ms)
  out=$(tests/host/run --arch "$arch" --timeout 5 sleep 1000 2>&1); rc=$?
  t1=$(ms)
  check "$arch: a hung command is killed at --timeout 5: status 124 after $((t1 - t0)) ms" '[[ $rc -eq 124 && $((t1 - t0)) -lt $limit ]]' "$out"
  check "$arch: the timeout is reported" '[[ $out == *"timed out after 5 s"* ]]' "$out"

  out=$(ZKRUN_HOST_KERNEL=$missing tests/host/run --arch "$arch" true 2>&1); rc=$?
  check "$arch: a missing kernel is a host failure (125)" '[[ $rc -eq 125 && $out == *"test host failed"* ]]' "$out"
}
