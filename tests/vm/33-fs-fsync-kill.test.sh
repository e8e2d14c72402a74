#!/usr/bin/env bash
# Data the guest wrote and fsync'ed through the virtio-fs root survives the VMM being killed:
# the guest writes a file, syncs it, prints a marker and sleeps; the host SIGKILLs the VMM
# process as soon as it sees the marker, then checks the file's bytes on the host.
source "$(dirname "$0")/30-fs-common.sh"
script='i=0; while [ $i -lt 2000 ]; do echo "line $i of the durable file"; i=$((i+1)); done > /durable
sync /durable; sync
echo DURABLE-SYNCED
sleep 600'
log="$work/vm.log"
"$work/$vm_prog" "$work/root" /bin/sh -c "$script" </dev/null >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 2400); do grep -q DURABLE-SYNCED "$log" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
saw=0; grep -q DURABLE-SYNCED "$log" && saw=1
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rc=$?
expect "the guest synced and printed its marker" '[[ $saw -eq 1 ]]' "$(cat "$log")"
expect "the VMM died by SIGKILL (status $rc)" '[[ $rc -eq 137 ]]'
want=$(i=0; while [ $i -lt 2000 ]; do echo "line $i of the durable file"; i=$((i+1)); done)
expect "the synced file is complete on the host after the kill" '[[ "$(cat "$work/root/durable" 2>/dev/null)" == "$want" ]]' "$(ls -la "$work/root" | head)"
[[ $fails -eq 0 ]]
