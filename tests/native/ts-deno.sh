#!/usr/bin/env bash
# The TypeScript suite under Deno (tests/ts/cases.ts through tests/ts/deno.test.ts), the Deno
# permission flags README.md documents (exactly those, and nothing less), and examples/run.ts's
# one-line errors. Native tier: no guest boots. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
lib=$PWD/zig-out/lib/libkrun.so.1
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }

# 1. The shared cases. The runner itself also needs --allow-run (cases spawn nothing today,
#    but the flag keeps node:child_process usable) and --allow-write for its scratch dir.
out=$(deno test --quiet --allow-ffi --allow-read --allow-write --allow-env --allow-run \
  tests/ts/deno.test.ts 2>&1); rc=$?
echo "$out" | grep -E '\.\.\. |FAILED|error' | sed 's/\x1b\[[0-9;]*m//g'
line=$(echo "$out" | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -1)
p=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")
if [[ -n $line ]]; then
  passed=$((passed + p)) failed=$((failed + f))
  [[ $rc -ne 0 && $f -eq 0 ]] && bad "deno test exited $rc" "$(echo "$out" | tail -5)"
else
  bad "deno test printed no summary (exit $rc)" "$(echo "$out" | tail -10)"
fi

# 2. README's flags, exactly. --allow-ffi cannot be scoped: argv/env arrays need buffer
#    addresses, which Deno only gives with unscoped FFI permission (checked just below).
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
flags=(--allow-ffi --allow-read --allow-write=/tmp --allow-env=LIBKRUN_PATH,TMPDIR)
out=$(deno run --quiet "${flags[@]}" tests/ts/permissions.ts "$root" 2>&1)
[[ $out == "permissions ok (deno, $lib)" ]] && ok "README flags suffice: ${flags[*]}" || bad "README flags" "$out"
# ...scoped to the library, loading fails at once with one line that says why.
out=$(deno run --quiet --allow-ffi="$lib" --allow-read --allow-env examples/run.ts --root "$root" -- /bin/true 2>&1)
rc=$?
if [[ $rc -eq 2 && $(wc -l <<<"$out") -eq 1 && $out == *"needs --allow-ffi without a path"* ]]; then
  ok "scoped --allow-ffi: one line, exit 2"
else bad "scoped --allow-ffi (exit $rc)" "$out"; fi
# ...and without --allow-ffi it fails with one line naming the flag.
out=$(deno run --quiet --allow-read --allow-env examples/run.ts --root "$root" -- /bin/true 2>&1); rc=$?
if [[ $rc -eq 2 && $(wc -l <<<"$out") -eq 1 && $out == *"--allow-ffi"* ]]; then ok "no --allow-ffi: one line, exit 2"
else bad "no --allow-ffi (exit $rc)" "$out"; fi

# 3. examples/run.ts: user mistakes are one line on stderr and a non-zero exit, no stack trace.
cli() { deno run --quiet --allow-ffi --allow-read --allow-env examples/run.ts "$@"; }
expect_line() { # NAME EXPECTED-EXIT REGEX -- ARGS...
  local name=$1 want=$2 re=$3; shift 4
  local out rc; out=$(cli "$@" 2>&1); rc=$?
  if [[ $rc -eq $want && $(wc -l <<<"$out") -eq 1 && $out =~ $re && $out != *"    at "* ]]; then ok "cli: $name"
  else bad "cli: $name (exit $rc, want $want)" "$out"; fi
}
expect_line "unknown flag" 2 "^run.ts: Unknown option '--bogus'" -- --bogus
expect_line "no --root" 2 "^run.ts: --root DIR is required" -- -- /bin/true
expect_line "missing root" 2 "^run.ts: krun_set_root: ENOENT.*does not exist" -- --root "$root/nope" -- /bin/true
expect_line "0 cpus" 2 "^run.ts: krun_set_vm_config: EINVAL.*cpus" -- --root "$root" --cpus 0 -- /bin/true
expect_line "cpus not a number" 2 "^run.ts: --cpus wants a number" -- --root "$root" --cpus two -- /bin/true
expect_line "bad rlimit" 2 "^run.ts: krun_set_rlimits: EINVAL.*unknown rlimit" -- --root "$root" --rlimit FOO=1:2 -- /bin/true
expect_line "no program" 2 "^run.ts: no program given" -- --root "$root"
LIBKRUN_PATH=/nonexistent/libkrun.so.1 expect_line "library not found" 2 \
  "^run.ts: cannot load libkrun.so.1; tried /nonexistent/libkrun.so.1 \(.*\)\. .*LIBKRUN_PATH" -- --root "$root" -- /bin/true
out=$(cli --help 2>&1); rc=$?
[[ $rc -eq 0 && $out == usage:* ]] && ok "cli: --help" || bad "cli: --help (exit $rc)" "$out"

# Contexts dropped without dispose are freed once collected (FinalizationRegistry).
out=$(deno run --quiet --allow-ffi --allow-read --allow-env --v8-flags=--expose-gc tests/ts/gc.ts 2>&1 | grep -v '^\[zkrun\]')
[[ $out == "gc ok: 5 of 5 freed" ]] && ok "dropped contexts freed by the GC safety net" || bad "GC safety net" "$out"

# libkrun.so.1 stays mapped after its last handle is closed (a running VM runs its code).
out=$(deno run --quiet -A tests/ts/pinned.ts 2>&1 | grep -v '^\[zkrun\]')
[[ $out == "pinned: mapped after close" ]] && ok "library pinned (RTLD_NODELETE)" || bad "library pinned" "$out"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
