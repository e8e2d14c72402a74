#!/usr/bin/env bash
# crun 1.8.1 (Debian's source, built --with-libkrun by tests/clients/build-crun.sh) runs OCI
# bundles as microVMs on zkrun's libkrun.so.1, selected by the run.oci.handler=krun annotation or
# by the `krun` argv[0] name. The container holds no libkrunfw: libkrun.so.1 loaded it on the
# host. Checked: args, env, cwd, exit status, stdout and stderr apart, the vCPUs (crun 1.8.1:
# the CPU affinity, at most 8) and the RAM (the OCI memory limit, else 2048 MiB), process.user,
# a read-only root. crun 1.8.1 does not read /.krun_vm.json (later crun versions do).
source "$(dirname "$0")/70-crun-lib.sh"

args=(/report.sh "two words" '"quoted"' "")
env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin" "FOO=bar baz" "REPORT_EXIT=7")
bundle "$work/a" args=args env=env cwd=/etc memory=$((320 << 20))
[[ ! -e $work/a/rootfs/usr/lib/libkrunfw.so.5 && -z $(find "$work/a/rootfs" -name 'libkrun*') ]] ||
  { echo "FAIL the bundle must not contain libkrun or libkrunfw"; exit 1; }
# One CPU in the affinity mask → 1 vCPU.
run_fg a "$work/a"
expect "annotation: the workload's exit status 7 (got $rc)" '[[ $rc -eq 7 ]]' "$out
$err"
expect "args reach the workload intact" 'has "R argc=3" && has "R arg1=[two words]" && has "R arg2=[\"quoted\"]" && has "R arg3=[]"' "$out"
expect "env from process.env, cwd from process.cwd" 'has "R env FOO=bar baz" && has "R env PATH=/usr/sbin:/usr/bin:/sbin:/bin" && has "R pwd=[/etc]"' "$out"
expect "stdout and stderr stay apart" 'grep -qx "E to stderr" <<<"$err" && ! grep -q "E to stderr" <<<"$out" && ! grep -q "^R " <<<"$err"' "$err"
expect "1 vCPU from the affinity mask" 'has "R nproc=[1]"' "$out"
mem=$(sed -n 's/^R memtotal_mib=\[\([0-9]*\)\]$/\1/p' <<<"$r")
expect "RAM from the OCI memory limit (320 MiB; guest MemTotal $mem MiB)" '[[ -n $mem && $mem -gt 256 && $mem -lt 352 ]]' "$out"
expect "crun removed the container after run" '[[ -z $(crun list -q 2>/dev/null) ]]' "$(crun list 2>&1)"

# The `krun` name selects the handler without the annotation (crun 1.8.1's defaults without a
# memory limit and CPU mask, 2048 MiB and every CPU up to 8, boot too slowly under emulation to
# check here).
args=(/report.sh)
env=("PATH=/bin")
bundle "$work/b" args=args env=env annotation=false
ln -s "$CRUN" "$work/krun"
taskset -c 0 "$work/krun" --root "$STATE" --cgroup-manager=disabled run --bundle "$work/b" b </dev/null >"$work/out" 2>"$work/err"; rc=$?
out=$(tr -d '\r' <"$work/out"); r=$(grep -a '^R ' <<<"$out")
mem=$(sed -n 's/^R memtotal_mib=\[\([0-9]*\)\]$/\1/p' <<<"$r")
expect "argv[0] krun: the workload ran in a 256 MiB VM (exit $rc, MemTotal $mem MiB)" '[[ $rc -eq 0 ]] && has "R argc=0" && has "R env PATH=/bin" && [[ -n $mem && $mem -lt 300 ]]' "$out
$(cat "$work/err")"

# process.user: crun 1.8.1 switches to it before it calls libkrun, so the VMM runs as uid 1000 on
# the host (reading the root-owned rootfs through its permissions). It writes /.krun_config.json
# mode 0700 for root, which that VMM cannot read: the workload still runs with the args and
# workdir crun passed through krun_set_exec / krun_set_workdir (later crun makes the file
# readable). Inside the VM the workload runs as root, as on libkrun (libkrun#123).
args=(/report.sh user-run)
env=("PATH=/bin" "LOST=1")
bundle "$work/u" args=args env=env uid=1000 gid=1000 cwd=/tmp
run_fg u "$work/u"
expect "process.user 1000:1000: the workload runs with its args and cwd (exit $rc)" '[[ $rc -eq 0 ]] && has "R arg1=[user-run]" && has "R pwd=[/tmp]"' "$out
$err"
echo "note: with process.user 1000:1000 the guest workload saw $(grep -a '^R id=' <<<"$r"), env: $(grep -a '^R env' <<<"$r" | tr '\n' ' ')"

# A read-only root: crun mounts it read-only in the container; the guest sees it so through
# virtio-fs (crun wrote .krun_config.json before the remount).
args=(/bin/sh -c 'touch /written 2>&1; echo "touch=$?"; echo ok >/etc/written 2>&1; echo "redirect=$?"; cat /bin/busybox >/dev/null; echo read=$?')
env=("PATH=/bin")
bundle "$work/c" args=args env=env readonly=true
run_fg c "$work/c"
expect "read-only root: writes fail with EROFS, reads work (exit $rc)" '[[ $rc -eq 0 ]] && grep -q "Read-only file system" <<<"$out" && grep -qx "touch=1" <<<"$out" && grep -qx "read=0" <<<"$out"' "$out
$err"
expect "read-only root: nothing written on the host" '[[ ! -e $work/c/rootfs/written && ! -e $work/c/rootfs/etc/written ]]'

[[ $fails -eq 0 ]]
