#!/usr/bin/env bash
# C API: every bad input through the real libkrun.so.1, from a C program built with cc against
# the installed header (see capi/errors.c for the list). No VM is started.
source "$(dirname "$0")/capi/lib.sh"
unset RUST_LOG ZKRUN_LOG
capi_cc "$work/errors" "$root/tests/native/capi/errors.c"
mkdir "$work/scratch"
"$work/errors" "$work/scratch"
