#!/usr/bin/env bash
# podman (Debian 12's 4.3) with our crun as its OCI runtime runs an image as a microVM on
# zkrun: `podman run --runtime <crun> --annotation run.oci.handler=krun`, rootful, vfs storage,
# `--network none` (no TSI or virtio-net yet), `--cgroups=disabled` (the test host kernel has no
# bpf(), which crun needs for cgroup v2 device rules). The image comes from an oci-archive that
# tests/vm/70-crun.prepare.sh packed from the busybox rootfs (no registry here). podman's
# configuration lives in this test's temporary directory (the host's /tmp), never in /etc.
source "$(dirname "$0")/70-crun-lib.sh"
command -v podman >/dev/null || skip "podman is not installed (scripts/setup.sh installs it)"
command -v conmon >/dev/null || skip "conmon is not installed (scripts/setup.sh installs it)"
archive=$cache/busybox-oci.tar
[[ -f $archive ]] || skip "no $archive: run tests/vm/70-crun.prepare.sh first"

p=$work/podman
mkdir -p "$p/tmp"
cat >"$p/containers.conf" <<CONF
[containers]
default_sysctls = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$p/events.log"
runtime = "zkrun-crun"
image_copy_tmp_dir = "$p/tmp"
# conmon starts the runtime with these only: crun's handler must find our libkrun.so.1.
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH=$lib"]
[engine.runtimes]
zkrun-crun = ["$CRUN"]
CONF
cat >"$p/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$p/root"
runroot = "$p/run"
CONF
export CONTAINERS_CONF=$p/containers.conf CONTAINERS_STORAGE_CONF=$p/storage.conf TMPDIR=$p/tmp
pod() { podman --root "$p/root" --runroot "$p/run" --storage-driver vfs --tmpdir "$p/libpod" "$@"; }

out=$(pod load -i "$archive" 2>&1); rc=$?
expect "podman load of the oci-archive (exit $rc)" '[[ $rc -eq 0 ]] && grep -q "Loaded image: localhost/zkrun-busybox:test" <<<"$out"' "$out"

run_pod() { # podman run ARGS...: sets out, err, rc
  taskset -c 0 podman --root "$p/root" --runroot "$p/run" --storage-driver vfs --tmpdir "$p/libpod" \
    run --rm --cgroups=disabled --runtime "$CRUN" --annotation run.oci.handler=krun --network none "$@" </dev/null >"$work/out" 2>"$work/err"; rc=$?
  out=$(tr -d '\r' <"$work/out"); err=$(tr -d '\r' <"$work/err")
}
run_pod -e GREETING=hello -w /etc localhost/zkrun-busybox:test \
  /bin/sh -c 'echo "greeting=$GREETING pwd=$(pwd) nproc=$(grep -c ^processor /proc/cpuinfo)"; echo "memtotal_mib=$(($(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo) / 1024))"; echo to-stderr >&2; exit 42'
expect "podman run: exit status 42 (got $rc)" '[[ $rc -eq 42 ]]' "$out
$err"
expect "podman run: env, workdir on stdout; 1 vCPU (taskset -c 0)" 'grep -qx "greeting=hello pwd=/etc nproc=1" <<<"$out"' "$out"
mem=$(sed -n 's/^memtotal_mib=//p' <<<"$out")
expect "podman run: the workload ran in a microVM of crun's default 2048 MiB (MemTotal $mem MiB)" '[[ -n $mem && $mem -gt 1800 && $mem -le 2048 ]]' "$out"
expect "podman run: stderr apart" 'grep -qx to-stderr <<<"$err" && ! grep -q to-stderr <<<"$out"' "$err"
expect "podman run leaves no container behind" '[[ -z $(pod ps -aq) ]]' "$(pod ps -a 2>&1)"
pod rmi -a -f >/dev/null 2>&1
[[ $fails -eq 0 ]]
