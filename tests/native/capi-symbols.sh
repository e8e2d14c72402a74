#!/usr/bin/env bash
# C API: the functions declared by include/libkrun.h are exactly the dynamic symbols libkrun.so.1
# defines (nothing missing, nothing stray), there are libkrun 1.x's 74 (main's 67, 1.19's
# krun_set_snd_device, the later 1.x additions) plus zkrun's 7 extensions,
# and the soname is libkrun.so.1.
source "$(dirname "$0")/capi/lib.sh"
lib=$prefix/lib/libkrun.so.1
p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }

header_functions >"$work/header"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TWiV]$/ || $2 ~ /^[DBR]$/ {print $3}' | sed 's/@.*//' | sort -u >"$work/exported"
missing=$(comm -23 "$work/header" "$work/exported")
stray=$(comm -13 "$work/header" "$work/exported")
[[ -z $missing ]] && ok "every header function is exported" || bad "declared but not exported: $missing"
[[ -z $stray ]] && ok "no export beyond the header" || bad "exported but not declared: $stray"
n=$(wc -l <"$work/header")
exts="krun_start krun_wait krun_stop krun_get_exit_reason krun_last_error krun_set_console_size krun_get_stats"
[[ $n -eq 81 ]] && ok "81 functions (74 libkrun + $exts)" || bad "$n functions in the header, expected 81"
for fn in krun_set_snd_device krun_append_kernel_cmdline krun_vm_pause krun_vm_resume krun_set_tee_firmware krun_display_set_edid_name krun_add_vfio_device; do
  grep -qx "$fn" "$work/header" && ok "libkrun 1.x $fn declared" || bad "libkrun 1.x $fn missing"
done
for ext in $exts; do
  grep -qx "$ext" "$work/header" && ok "extension $ext declared" || bad "extension $ext missing"
done
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libkrun.so.1 ]] && ok "soname libkrun.so.1" || bad "soname is '$soname'"
# Every export is a function (crun dlsym()s them as such).
objects=$(nm -D --defined-only "$lib" | awk '$2 !~ /^[TtWi]$/ {print $3}')
[[ -z $objects ]] && ok "all exports are functions" || bad "non-function exports: $objects"
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
