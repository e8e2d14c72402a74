#!/usr/bin/env bash
# Runs inside the test host (tests/host/run): every tests/vm/*.test.sh (or those whose names start
# with the arguments), one line each, then a total.
# Each test exits 0 (pass), 77 (could not run: counted and named as skipped) or anything else (fail);
# a test still running after ZKRUN_VM_TEST_TIMEOUT (600) seconds is killed and fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PWD/.tools/js/node_modules/.bin:$PATH"
p=0 f=0 s=0
# Optional arguments: whole names (e.g. "10-vmm-boot": exactly that test) or name prefixes (e.g.
# "2": tests/vm/2*.test.sh).
tests=()
for pre in "${@:-}"; do
  if [[ -n $pre && -e tests/vm/$pre.test.sh ]]; then tests+=("tests/vm/$pre.test.sh"); else tests+=(tests/vm/${pre}*.test.sh); fi
done
for t in "${tests[@]}"; do
  [[ -e $t ]] || continue
  name=$(basename "$t" .test.sh)
  t0=$SECONDS
  out=$(timeout "${ZKRUN_VM_TEST_TIMEOUT:-600}" "$t" 2>&1); rc=$?
  name="$name ($((SECONDS - t0)) s)"
  if [[ $rc -eq 0 ]]; then p=$((p+1)); echo "vm: $name ok"
  elif [[ $rc -eq 77 ]]; then s=$((s+1)); echo "vm: $name SKIPPED (could not run)"; echo "$out" | tail -5
  else f=$((f+1)); echo "vm: $name FAIL (exit $rc)"; echo "$out" | tail -60 | sed 's/^/    | /'; fi
done
echo "$p passed, $f failed$([[ $s -gt 0 ]] && echo ", $s skipped")"
[[ $f -eq 0 ]]
