#!/usr/bin/env bash
# The virtio-fs hostile-driver harness (tests/zig/fs/hostile.zig): a malicious guest sends
# raw FUSE requests to the real server over real files and tries to leave the share (.., /,
# symlinks absolute/relative/magic, hard links, renames, forged ids, bad lengths and offsets,
# garbage). Every attempt must be refused. Also runs the server's request-level tests
# (tests/zig/fs/server.zig): `zig build harness` installs both as zig-out/bin/test-fs.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
zig build harness -j2 --summary none || { echo "0 passed, 1 failed"; exit 1; }
out=$(./zig-out/bin/test-fs 2>&1); rc=$?
echo "$out" | grep -E '^[0-9]+/[0-9]+ ' | sed 's/^[0-9]*\/[0-9]* //'
passed=$(echo "$out" | grep -cE '^[0-9]+/[0-9]+ .*\.\.\.OK$')
failed=$(echo "$out" | grep -cE '^[0-9]+/[0-9]+ .*\.\.\.FAIL')
if [[ $rc -ne 0 && $failed -eq 0 ]]; then echo "$out" | tail -30; failed=1; fi
echo "$passed passed, $failed failed"
[[ $rc -eq 0 ]]
