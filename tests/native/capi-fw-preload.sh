#!/usr/bin/env bash
# Loading libkrun.so.1 loads libkrunfw.so.5 too (libkrun 1.x linked it): crun dlopens libkrun on
# the host and boots the VM after pivot_root, where libkrunfw's file is out of reach. Checked:
# right after dlopen("libkrun.so.1"), libkrunfw.so.5 is in the process (RTLD_NOLOAD finds it);
# with no libkrunfw anywhere, libkrun.so.1 still loads and leaves no dlerror() behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
lib=$PWD/zig-out/lib
[[ -e $lib/libkrun.so.1 && -e $lib/libkrunfw.so.5 ]] || { echo "FAIL: $lib/libkrun.so.1 or libkrunfw.so.5 is not built"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cat > "$dir/t.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    int want = argc > 1 && strcmp(argv[1], "loaded") == 0;
    void *k = dlopen("libkrun.so.1", RTLD_NOW);
    if (!k) { printf("dlopen libkrun.so.1: %s\n", dlerror()); return 1; }
    const char *stale = dlerror();
    void *fw = dlopen("libkrunfw.so.5", RTLD_NOW | RTLD_NOLOAD);
    printf("libkrunfw.so.5 %s after dlopen(libkrun.so.1); dlerror %s\n", fw ? "loaded" : "not loaded", stale ? stale : "clear");
    return (want == (fw != NULL) && stale == NULL) ? 0 : 1;
}
C
cc -o "$dir/t" "$dir/t.c" -ldl || exit 1
fails=0
LD_LIBRARY_PATH=$lib "$dir/t" loaded && echo "ok   libkrunfw.so.5 is loaded with libkrun.so.1" || { echo "FAIL libkrunfw.so.5 not preloaded"; fails=$((fails+1)); }
mkdir "$dir/alone" && cp "$lib/libkrun.so.1" "$dir/alone/"
LD_LIBRARY_PATH=$dir/alone "$dir/t" missing && echo "ok   without libkrunfw, libkrun.so.1 loads cleanly" || { echo "FAIL libkrun.so.1 without libkrunfw"; fails=$((fails+1)); }
echo "$((2 - fails)) passed, $fails failed"
[[ $fails -eq 0 ]]
