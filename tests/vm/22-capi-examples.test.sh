#!/usr/bin/env bash
# The C examples, built with cc against the installed header, on a busybox root filesystem with
# our libkrunfw kernel, virtio-fs root and init: examples/chroot_vm runs a command and exits with
# its status; examples/minimal (the seed program) runs /bin/sh from ./rootfs with its commands on
# stdin. tests/native/capi/vm_status.c does the same through krun_start/krun_wait.
source "$(dirname "$0")/../native/capi/vm-common.sh"
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
[[ -x scripts/mkrootfs.sh ]] || skip "scripts/mkrootfs.sh (the busybox rootfs) does not exist yet"
ROOTFS=${ZKRUN_CAPI_ROOTFS:-$(bin rootfs)}
[[ -x $ROOTFS/bin/sh ]] || { echo "FAIL: no busybox rootfs at '$ROOTFS' (scripts/mkrootfs.sh)"; exit 1; }

out=$(timeout 300 "$(bin chroot_vm)" -c 1 -m 256 -e GREETING=hello "$ROOTFS" /bin/sh -c 'echo "guest says $GREETING $1"; exit 7' sh arg1 </dev/null 2>&1); rc=$?
expect "chroot_vm exits with the command's status 7 (got $rc)" '[[ $rc -eq 7 ]]' "$out"
expect "argv and env reached the command" 'grep -q "guest says hello arg1" <<<"$out"' "$out"
out=$(timeout 300 "$(bin chroot_vm)" "$ROOTFS" /no/such/program </dev/null 2>&1); rc=$?
expect "a missing program exits 127 (got $rc)" '[[ $rc -eq 127 ]]' "$out"
out=$(timeout 300 "$(bin chroot_vm)" -w /tmp "$ROOTFS" /bin/pwd </dev/null 2>&1); rc=$?
expect "workdir reached the command (rc $rc)" '[[ $rc -eq 0 ]] && grep -qx "/tmp" <<<"$(tr -d "\r" <<<"$out")"' "$out"

mkdir "$work/run" && ln -s "$ROOTFS" "$work/run/rootfs"
out=$(cd "$work/run" && printf 'echo minimal-ok\nexit 3\n' | timeout 300 "$(bin minimal)" 2>&1); rc=$?
expect "minimal: /bin/sh ran its stdin and its status 3 came back (got $rc)" '[[ $rc -eq 3 ]] && grep -q "minimal-ok" <<<"$out"' "$out"
# In-process: krun_wait returns each workload's status, two VMs side by side.
out=$(timeout 300 "$(bin vm_status)" "$ROOTFS" "$work" 2>&1); rc=$?
expect "krun_start/krun_wait: workload statuses 9 and 0 from two VMs at once" '[[ $rc -eq 0 ]]' "$out$(cat "$work"/status-*.log 2>/dev/null | tail -20)"
[[ $fails -eq 0 ]]
