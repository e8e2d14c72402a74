#!/usr/bin/env bash
# C API: strings are copied before each call returns (capi/copies.c). The exec/env arrays'
# contents are checked field by field by the Zig unit tests (capi/workload.zig), which can read
# the recorded Config.
source "$(dirname "$0")/capi/lib.sh"
unset RUST_LOG ZKRUN_LOG
capi_cc "$work/copies" "$root/tests/native/capi/copies.c"
mkdir "$work/scratch"
"$work/copies" "$work/scratch"
