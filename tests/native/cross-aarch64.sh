#!/usr/bin/env bash
# Cross build for aarch64-linux (issue 16): `zig build -Dtarget=aarch64-linux-gnu` must produce
# libkrun.so.1 (aarch64, soname libkrun.so.1, the header's functions exported) and a static
# aarch64 /init.krun, so x86-only code cannot creep back into the shared VMM (vmm/arch.zig picks
# the backend at compile time). The same build as tests/aarch64/20-capi.prepare.sh's (shared
# Zig cache). The aarch64 kernel is not needed here.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
work=$(mktemp -d /tmp/zkrun-cross-aarch64.XXXXXX)
trap 'rm -rf "$work"' EXIT
p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }
# e_machine (bytes 18-19 of an ELF header): 183 = EM_AARCH64.
machine() { od -An -tu2 -j18 -N2 "$1" 2>/dev/null | tr -d ' '; }

if zig build -Dtarget=aarch64-linux-gnu --prefix "$work" --summary none >"$work/build.log" 2>&1; then
  ok "zig build -Dtarget=aarch64-linux-gnu"
else
  bad "zig build -Dtarget=aarch64-linux-gnu:"; sed 's/^/    /' "$work/build.log" | head -40
fi
lib=$work/lib/libkrun.so.1
init=$work/bin/init.krun
[[ -f $lib && $(machine "$lib") == 183 ]] && ok "libkrun.so.1 is an aarch64 ELF" || bad "no aarch64 libkrun.so.1"
soname=$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libkrun.so.1 ]] && ok "soname libkrun.so.1" || bad "soname is '$soname'"
nm -D --defined-only "$lib" 2>/dev/null | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$work/exported"
grep -oE '^[a-z0-9_ *]+\bkrun_[a-z0-9_]+\(' include/libkrun.h | grep -oE 'krun_[a-z0-9_]+' | sort -u >"$work/header"
if cmp -s "$work/header" "$work/exported"; then ok "exports exactly the header's $(wc -l <"$work/header") functions"
else bad "exports differ from the header:"; diff "$work/header" "$work/exported" | head; fi
[[ -f $init && $(machine "$init") == 183 ]] && ok "init.krun is an aarch64 ELF" || bad "no aarch64 init.krun"
grep -q INTERP <<<"$(readelf -l "$init" 2>/dev/null)" && bad "init.krun is dynamically linked" || ok "init.krun is static"
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
