#!/usr/bin/env bash
# Tidy: the Zig tests name no fixed /tmp path. Several `zig build test` runs share this machine
# (one per worktree, plus a fresh clone) and fixed names let them truncate, lock and unlink each
# other's images, guest binaries and sockets: tests failed only under load. Scratch files go
# through libkrun-c/test_tmp.zig (`/tmp/zkrun-unit-<pid>/...`) or carry the pid in the name
# ("{d}" formatted with getpid). Prints each offending line and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
bad=0 checked=0
while IFS= read -r f; do
  [[ $f == libkrun-c/test_tmp.zig ]] && continue
  checked=$((checked + 1))
  # A literal naming a file of ours under /tmp ("/tmp/zkrun-..."), unless pid-formatted. (Paths
  # that are only recorded, never created, such as "/tmp/x" in C API argument tests, are fine.)
  hits=$(grep -nE '"/tmp/zkrun-[^"]*"' "$f" | grep -vE '"/tmp/zkrun-[^"]*\{d\}[^"]*"' || true)
  if [[ -n $hits ]]; then
    bad=$((bad + 1))
    sed "s|^|$f:|" <<<"$hits"
  fi
done < <(find libkrun-c tests/zig tests/fuzz -name '*.zig' | sort)
echo "$((checked - bad)) passed, $bad failed"
[[ $bad -eq 0 ]]
