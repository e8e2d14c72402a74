#!/usr/bin/env bash
# The virtio-fs server's request-level tests and hostile-driver harness (tests/zig/fs/, as
# fs-hostile.sh runs them) on the posix backend, macOS's (libkrun-c/virtio/fs/sys_posix.zig):
# `zig build harness` installs them as zig-out/bin/test-fs-posix, built under
# tests/zig/fs/posix_runner.zig, which selects that backend on Linux. Real files in a temporary
# directory; a Linux feature macOS lacks is asserted as the errno the backend replies (ENOSYS
# for locks, COPY_FILE_RANGE, SYNCFS). The virtio/fs unit tests on this backend run in
# `zig build test` (fs-posix-unit).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build harness -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
out=$(./zig-out/bin/test-fs-posix 2>&1); rc=$?
echo "$out" | grep -E '^[0-9]+/[0-9]+ ' | sed 's/^[0-9]*\/[0-9]* //'
passed=$(echo "$out" | grep -cE '^[0-9]+/[0-9]+ .*\.\.\.OK$')
failed=$(echo "$out" | grep -cE '^[0-9]+/[0-9]+ .*\.\.\.FAIL')
skipped=$(echo "$out" | grep -cE '^[0-9]+/[0-9]+ .*\.\.\.SKIP$')
# The posix backend must be the one that ran: its lock test takes the ENOSYS branch, which
# the Linux backend's binary (test-fs) would fail; a runner that lost `zkrun_fs_posix` would
# show here as all-Linux results, so the count of tests must match and none may skip.
if [[ $skipped -ne 0 ]]; then echo "$skipped tests skipped: $(echo "$out" | grep -E 'SKIP$' | tr '\n' ' ')"; failed=$((failed + skipped)); fi
if [[ $rc -ne 0 && $failed -eq 0 ]]; then echo "$out" | tail -30; failed=1; fi
echo "$passed passed, $failed failed"
[[ $rc -eq 0 && $failed -eq 0 ]]
