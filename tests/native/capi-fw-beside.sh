#!/usr/bin/env bash
# libkrunfw.so.5 installed next to libkrun.so.1 is found without LD_LIBRARY_PATH, even by a
# program linked with RUNPATH (which does not apply to libkrun's own dlopen of libkrunfw):
# krun_start must get as far as a running VM (then krun_stop ends it), not -ENOENT.
set -uo pipefail
cd "$(dirname "$0")/../.."
lib=$PWD/zig-out/lib
[[ -e $lib/libkrunfw.so.5 ]] || { echo "FAIL: $lib/libkrunfw.so.5 is not built"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cat > "$dir/t.c" <<'C'
#include <libkrun.h>
#include <stdio.h>
int main(void) {
    int ctx = krun_create_ctx();
    if (ctx < 0 || krun_set_vm_config(ctx, 1, 128) != 0) return 2;
    int rc = krun_start(ctx);
    printf("krun_start=%d\n", rc);
    if (rc != 0) return 1;
    krun_stop(ctx);
    rc = krun_wait(ctx, 20000);
    printf("krun_wait=%d\n", rc);
    return rc >= 0 ? 0 : 1;
}
C
cc -o "$dir/t" "$dir/t.c" -I zig-out/include -L "$lib" -lkrun -Wl,-rpath,"$lib" -Wl,--enable-new-dtags || exit 1
grep -q RUNPATH <<<"$(readelf -d "$dir/t")" || { echo "FAIL: test program has no RUNPATH"; exit 1; }
if env -u LD_LIBRARY_PATH timeout 60 "$dir/t"; then echo "ok: libkrunfw found beside libkrun.so.1"; else echo "FAIL: libkrunfw not found beside libkrun.so.1"; exit 1; fi
