#!/usr/bin/env bash
# C API under contention: 8 threads x 2000 create/configure/free rounds plus a shared context
# (capi/threads.c); ids stay unique and no call misbehaves.
source "$(dirname "$0")/capi/lib.sh"
capi_cc "$work/threads" "$root/tests/native/capi/threads.c" -lpthread
mkdir "$work/scratch"
"$work/threads" "$work/scratch"
