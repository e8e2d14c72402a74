#!/usr/bin/env bash
# The OCI lifecycle of a krun container: `crun run -d`, `crun state`, `crun kill` (SIGTERM reaches
# the workload inside the VM: libkrun.so.1's krun_start_enter passes it to init through the
# krun-signal port), the VM ends with the workload, `crun delete` removes the container.
source "$(dirname "$0")/70-crun-lib.sh"

args=(/bin/sh -c 'trap "echo got-TERM; echo term >/got-term; exit 3" TERM; echo ready >/ready; while :; do sleep 1; done')
env=("PATH=/bin")
bundle "$work/k" args=args env=env
taskset -c 0 "$CRUN" --root "$STATE" --cgroup-manager=disabled run -d --bundle "$work/k" k </dev/null >"$work/out" 2>"$work/err"; rc=$?
expect "crun run -d starts the container (exit $rc)" '[[ $rc -eq 0 ]]' "$(cat "$work/err")"
for _ in $(seq 1 600); do [[ -e $work/k/rootfs/ready ]] && break; sleep 0.2; done
expect "the workload runs in the VM (it wrote /ready through virtio-fs)" '[[ -e $work/k/rootfs/ready ]]' "$(cat "$work/out" "$work/err")"
state=$(crun state k 2>&1)
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' <<<"$state")
expect "crun state: running, with the VMM's pid" 'grep -q "\"status\": *\"running\"" <<<"$state" && [[ -n $pid ]] && kill -0 "$pid"' "$state"
crun kill k TERM; rc=$?
expect "crun kill k TERM (exit $rc)" '[[ $rc -eq 0 ]]'
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
expect "the VMM process ended after the workload" '! kill -0 "$pid" 2>/dev/null'
out=$(tr -d '\r' <"$work/out")
expect "SIGTERM reached the workload: its trap ran" '[[ -e $work/k/rootfs/got-term ]] && grep -qx got-TERM <<<"$out"' "$out
$(cat "$work/err")"
state=$(crun state k 2>&1)
expect "crun state: stopped" 'grep -q "\"status\": *\"stopped\"" <<<"$state"' "$state"
crun delete k; rc=$?
expect "crun delete k (exit $rc)" '[[ $rc -eq 0 ]]'
expect "crun delete removed the container and its state" '! crun state k >/dev/null 2>&1 && [[ -z $(crun list -q) && ! -e $STATE/k ]]' "$(crun list 2>&1; ls -la "$STATE")"

# A workload that ignores SIGTERM keeps running; SIGKILL to the VMM still ends everything and
# `crun delete -f` cleans up.
args=(/bin/sh -c 'trap "" TERM; echo ready >/ready; while :; do sleep 1; done')
bundle "$work/i" args=args env=env
taskset -c 0 "$CRUN" --root "$STATE" --cgroup-manager=disabled run -d --bundle "$work/i" i </dev/null >/dev/null 2>&1
for _ in $(seq 1 600); do [[ -e $work/i/rootfs/ready ]] && break; sleep 0.2; done
pid=$(crun state i | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
crun kill i TERM
sleep 2
expect "a workload that ignores SIGTERM keeps the VM running" '[[ -n $pid ]] && kill -0 "$pid"'
crun delete -f i; rc=$?
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
expect "crun delete -f kills it and cleans up (exit $rc)" '[[ $rc -eq 0 ]] && ! kill -0 "$pid" 2>/dev/null && [[ -z $(crun list -q) ]]' "$(crun list 2>&1)"
[[ $fails -eq 0 ]]
