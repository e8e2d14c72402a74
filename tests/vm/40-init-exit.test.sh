#!/usr/bin/env bash
# Exit statuses travel from the guest workload to the host process through our init (status
# to the virtio-fs ioctl 0x7602, then reboot): 0, 7, 126 (not executable), 127 (missing),
# 137 (killed by SIGKILL), 125 (bad workdir: setup failed).
source "$(dirname "$0")/40-init-lib.sh"
vm "$RUN" "$ROOTFS" /bin/true
expect "exit 0 (got $rc)" '[[ $rc -eq 0 ]]' "$out"
vm "$RUN" "$ROOTFS" /bin/sh -c 'echo status-seven; exit 7'
expect "exit 7 with the workload's output (got $rc)" '[[ $rc -eq 7 ]] && grep -qx status-seven <<<"$out"' "$out"
vm "$RUN" "$ROOTFS" /no/such/binary
expect "missing binary: 127 and the reason on stderr (got $rc)" '[[ $rc -eq 127 ]] && grep -q "init.krun: exec /no/such/binary: NOENT" <<<"$out"' "$out"
vm "$RUN" "$ROOTFS" /etc/passwd
expect "not executable: 126 (got $rc)" '[[ $rc -eq 126 ]]' "$out"
vm "$RUN" "$ROOTFS" /bin/sh -c 'kill -9 $$'
expect "killed by SIGKILL: 137 (got $rc)" '[[ $rc -eq 137 ]]' "$out"
vm "$RUN" -w /no/such/dir "$ROOTFS" /bin/true
expect "missing workdir: 125 and the reason (got $rc)" '[[ $rc -eq 125 ]] && grep -q "init.krun: workdir /no/such/dir: NOENT" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
