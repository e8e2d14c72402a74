#!/usr/bin/env bash
# Runs inside the aarch64 test host (tests/host/run --arch aarch64): every tests/aarch64/*.test.sh
# (or those whose names start with the arguments), one line each, then a total. Each test exits
# 0 (pass), 77 (could not run: counted and named as skipped) or anything else (fail). Their
# builds ran on the machine first (tests/aarch64/*.prepare.sh): this host has no Zig.
set -uo pipefail
cd "$(dirname "$0")/../.."
p=0 f=0 s=0
tests=()
for pre in "${@:-}"; do tests+=(tests/aarch64/${pre}*.test.sh); done
for t in "${tests[@]}"; do
  [[ -e $t ]] || continue
  name=$(basename "$t" .test.sh)
  t0=$SECONDS
  out=$(timeout 900 "$t" 2>&1); rc=$?
  name="$name ($((SECONDS - t0)) s)"
  if [[ $rc -eq 0 ]]; then p=$((p+1)); echo "aarch64: $name ok"; echo "$out" | sed 's/^/    | /'
  elif [[ $rc -eq 77 ]]; then s=$((s+1)); echo "aarch64: $name SKIPPED (could not run)"; echo "$out" | tail -5
  else f=$((f+1)); echo "aarch64: $name FAIL (exit $rc)"; echo "$out" | tail -60 | sed 's/^/    | /'; fi
done
echo "$p passed, $f failed$([[ $s -gt 0 ]] && echo ", $s skipped")"
[[ $f -eq 0 ]]
