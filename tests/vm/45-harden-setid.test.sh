#!/usr/bin/env bash
# A VMM running as root (the test host's) leaves no set-user-ID or set-group-ID file behind in
# a shared directory: a guest root creates, copies and chmods files with those bits; on the
# host none has them. A directory keeps its set-group-ID bit (group inheritance, no privilege).
vm_prog=43-harden-vm
source "$(dirname "$0")/30-fs-common.sh"
[[ $(id -u) -eq 0 ]] || skip "the VMM must run as root for this test"
script='cp /bin/busybox /suid && chmod 4755 /suid
echo x > /sgid && chmod 2755 /sgid
echo y > /both && chmod 6711 /both
mkdir /gdir && chmod 2775 /gdir
echo guest sees: $(stat -c %a /suid /sgid /both /gdir)'
out=$(vm share "$work/root" unused "$work" /bin/sh -c "$script"); rc=$?
expect "the guest ran (status $rc)" '[[ $rc -eq 0 ]]' "$out"
modes=$(stat -c '%n %a' "$work/root/suid" "$work/root/sgid" "$work/root/both" "$work/root/gdir" 2>&1)
expect "no set-id bit on the host's files" '[[ $(stat -c %a "$work/root/suid") == 755 && $(stat -c %a "$work/root/sgid") == 755 && $(stat -c %a "$work/root/both") == 711 ]]' "$modes"
expect "the directory keeps its set-group-ID bit" '[[ $(stat -c %a "$work/root/gdir") == 2775 ]]' "$modes"
[[ $fails -eq 0 ]]
