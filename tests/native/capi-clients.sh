#!/usr/bin/env bash
# Real clients' configuration sequences (crun through dlopen, krunvm), up to krun_start_enter
# (capi/clients.c). The kernel is any x86_64 ELF with PT_LOAD segments (this test's own binary).
source "$(dirname "$0")/capi/lib.sh"
capi_cc "$work/clients" "$root/tests/native/capi/clients.c" -ldl
mkdir "$work/rootfs"
LD_LIBRARY_PATH="$prefix/lib" "$work/clients" "$work/rootfs" "$work/clients"
