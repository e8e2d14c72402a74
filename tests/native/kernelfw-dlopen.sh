#!/usr/bin/env bash
# dlopens zig-out/lib/libkrunfw.so.5 from C (by soname, as libkrun does) and checks its ABI and
# its bundle against the cached vmlinux (tests/native/kernelfw/dlopen_check.c), plus the
# library's shape: soname, symlinks, exports, stripped, size.
set -uo pipefail
cd "$(dirname "$0")/../.."
lib=zig-out/lib/libkrunfw.so.5
vmlinux=$(kernelfw/build-kernel.sh --print-path)
for f in "$lib" "$vmlinux"; do
  [[ -f $f ]] || { echo "FAIL: $f missing (run: make build)"; echo "0 passed, 1 failed"; exit 1; }
done

work=$(mktemp -d /tmp/zkrun-kernelfw-dlopen.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$work/dlopen_check" tests/native/kernelfw/dlopen_check.c -ldl || {
  echo "FAIL: compiling dlopen_check.c"; echo "0 passed, 1 failed"; exit 1; }
LD_LIBRARY_PATH="$PWD/zig-out/lib" "$work/dlopen_check" "$vmlinux" | tee "$work/out"
read -r cp cf < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ {print $1, $3}' "$work/out")
passed=${cp:-0} failed=${cf:-1}
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

real=$(readlink -f "$lib")
[[ $(basename "$real") == libkrunfw.so.5.4.0 ]] && ok "libkrunfw.so.5 -> libkrunfw.so.5.4.0" || bad "libkrunfw.so.5 -> $real"
[[ $(readlink -f zig-out/lib/libkrunfw.so) == "$real" ]] && ok "libkrunfw.so -> the same file" || bad "libkrunfw.so symlink"
soname=$(readelf -d "$real" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ $soname == libkrunfw.so.5 ]] && ok "soname libkrunfw.so.5" || bad "soname '$soname'"
exports=$(nm -D --defined-only "$real" | awk '{print $3}' | sort | tr '\n' ' ')
[[ $exports == "KERNEL_BUNDLE krunfw_get_kernel krunfw_get_version " ]] && ok "exports: $exports" || bad "exports: $exports"
grep -qE '\.(symtab|debug_)' <<<"$(readelf -S "$real")" && bad "not stripped" || ok "stripped (no .symtab, no debug info)"
size=$(stat -c %s "$real")
echo "info libkrunfw.so.5.4.0: $size bytes ($(echo "scale=1; $size / 1048576" | bc) MiB); vmlinux $(stat -c %s "$vmlinux") bytes"
((size < 8 * 1048576)) && ok "libkrunfw.so under 8 MiB" || bad "libkrunfw.so is $size bytes (target < 8 MiB)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
