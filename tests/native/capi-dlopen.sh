#!/usr/bin/env bash
# C API: dlopen("libkrun.so.1", RTLD_NOW) and dlsym of every header function, as crun loads
# libkrun (capi/dlopen_all.c). The program is not linked with -lkrun.
source "$(dirname "$0")/capi/lib.sh"
cc -std=gnu11 -Wall -Wextra -Werror -o "$work/dlopen_all" "$root/tests/native/capi/dlopen_all.c" -ldl
header_functions | LD_LIBRARY_PATH="$prefix/lib" "$work/dlopen_all"
