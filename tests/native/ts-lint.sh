#!/usr/bin/env bash
# The TypeScript sources are publishable and clean: deno check, deno lint (with the jsr tag and
# explicit return types), deno fmt --check, deno doc --lint mod.ts (every public symbol
# documented, no private types leaking), and deno publish --dry-run (no slow types).
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH" NO_COLOR=1
passed=0 failed=0
step() { # NAME CMD...
  local name=$1; shift
  local out; if out=$("$@" 2>&1); then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; echo "$out" | tail -30 | sed 's/^/     /'; fi
}
step "deno check" deno check -q mod.ts src/ ffi/ examples/run.ts tests/ts/ cli/
step "deno lint" deno lint -q
step "deno fmt --check" deno fmt -q --check
step "deno doc --lint mod.ts" deno doc -q --lint mod.ts
# The dry run needs no network; --allow-dirty because the tree is shared and rarely clean.
step "deno publish --dry-run" deno publish -q --dry-run --allow-dirty
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
