#!/usr/bin/env bash
# The TypeScript suite under Bun (tests/ts/cases.ts through tests/ts/bun.test.ts) and
# examples/run.ts's one-line errors under Bun. Native tier: no guest boots.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }

# 1. The shared cases.
out=$(bun test tests/ts/bun.test.ts 2>&1); rc=$?
echo "$out" | grep -E '^\((pass|fail)\)'
p=$(echo "$out" | sed -nE 's/^ *([0-9]+) pass$/\1/p' | tail -1)
f=$(echo "$out" | sed -nE 's/^ *([0-9]+) fail$/\1/p' | tail -1)
if [[ -n $p && -n $f ]]; then
  passed=$((passed + p)) failed=$((failed + f))
  [[ $rc -ne 0 && $f -eq 0 ]] && bad "bun test exited $rc" "$(echo "$out" | tail -5)"
else
  bad "bun test printed no summary (exit $rc)" "$(echo "$out" | tail -10)"
fi

# Contexts dropped without dispose are freed once collected (FinalizationRegistry).
out=$(bun --expose-gc tests/ts/gc.ts 2>&1 | grep -v '^\[zkrun\]')
[[ $out == "gc ok: 5 of 5 freed" ]] && ok "dropped contexts freed by the GC safety net" || bad "GC safety net" "$out"
out=$(bun tests/ts/pinned.ts 2>&1 | grep -v '^\[zkrun\]')
[[ $out == "pinned: mapped after close" ]] && ok "library pinned (RTLD_NODELETE)" || bad "library pinned" "$out"

# 2. examples/run.ts: user mistakes are one line and exit 2, never a stack trace.
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
expect_line() { # NAME REGEX -- ARGS...
  local name=$1 re=$2; shift 3
  local out rc; out=$(bun examples/run.ts "$@" 2>&1); rc=$?
  if [[ $rc -eq 2 && $(wc -l <<<"$out") -eq 1 && $out =~ $re && $out != *"    at "* ]]; then ok "cli: $name"
  else bad "cli: $name (exit $rc)" "$out"; fi
}
expect_line "unknown flag" "^run.ts: Unknown option '--bogus'" -- --bogus
expect_line "missing root" "^run.ts: krun_set_root: ENOENT.*does not exist" -- --root "$root/nope" -- /bin/true
expect_line "huge memory" "^run.ts: krun_set_vm_config: EINVAL.*memoryMiB" -- --root "$root" --mem 99999999999 -- /bin/true
expect_line "--env without =" "^run.ts: --env wants A=B" -- --root "$root" --env NOEQUALS -- /bin/true
LIBKRUN_PATH=/nonexistent/libkrun.so.1 expect_line "library not found" \
  "^run.ts: cannot load libkrun.so.1; tried /nonexistent/libkrun.so.1 \(.*\)\. .*LIBKRUN_PATH" -- --root "$root" -- /bin/true
out=$(bun examples/run.ts --help 2>&1); rc=$?
[[ $rc -eq 0 && $out == usage:* ]] && ok "cli: --help" || bad "cli: --help (exit $rc)" "$out"

# 3. `bun build --compile` of examples/run.ts: one executable with mod.ts inside, which loads
#    LIBKRUN_PATH and reports the library's reason for a bad root in one line.
bin=$(mktemp -d)
if out=$(bun build --compile --outfile "$bin/run" examples/run.ts 2>&1); then
  out=$(LIBKRUN_PATH=$PWD/zig-out/lib/libkrun.so.1 "$bin/run" --root "$root/nope" -- /bin/true 2>&1); rc=$?
  if [[ $rc -eq 2 && $out == "run.ts: krun_set_root: ENOENT"*"does not exist" ]]; then ok "bun build --compile examples/run.ts: the binary runs mod.ts"
  else bad "compiled examples/run.ts (exit $rc)" "$out"; fi
else bad "bun build --compile examples/run.ts" "$out"; fi
rm -rf "$bin"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
