# Sourced by tests/vm/7x-*.test.sh (inside the test host): the crun that
# tests/clients/build-crun.sh built with its libkrun handler, loading the shipped
# zig-out/lib/libkrun.so.1 (and libkrunfw.so.5 beside it); OCI bundles on the busybox rootfs;
# helpers. libkrunfw is never copied into a container: libkrun.so.1 loads it on the host.
# Exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
lib=$PWD/zig-out/lib
[[ -e $lib/libkrun.so.1 && -e $lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrun.so.1 or libkrunfw.so.5 not built (zig build -Dkernel=...)"
CRUN=$(tests/clients/build-crun.sh --print-path)
[[ -x $CRUN ]] || skip "crun is not built: run tests/vm/70-crun.prepare.sh on the machine first"
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/crun"
[[ -f $cache/rootfs.tar ]] || skip "no busybox rootfs: run tests/vm/70-crun.prepare.sh first"
# crun's handler dlopens "libkrun.so.1" on the host, before it enters the container.
export LD_LIBRARY_PATH=$lib
# The cgroup2 hierarchy (the test host's init mounts it; crun runs with --cgroup-manager=disabled).
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
work=$(mktemp -d /tmp/zkrun-crun.XXXXXX)
STATE=$work/state
trap 'rm -rf "$work"' EXIT
crun() { "$CRUN" --root "$STATE" --cgroup-manager=disabled "$@"; }
tar -C "$work" --one-top-level=base -xf "$cache/rootfs.tar" || { echo "FAIL: unpacking $cache/rootfs.tar"; exit 1; }

fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); [[ -n ${3:-} ]] && echo "$3" | tail -30 | sed 's/^/     | /'; fi
}
json_strings() { local s='' a; for a in "$@"; do a=${a//\\/\\\\}; a=${a//\"/\\\"}; s+="${s:+,}\"$a\""; done; printf '%s' "$s"; }

# bundle DIR [key=value...]: a bundle on a fresh copy of the busybox rootfs. Keys: args (a
# bash array name), env (array name), cwd, uid, gid, readonly (true|false), annotation
# (true: run.oci.handler=krun), memory (bytes of OCI memory limit = the VM's RAM for crun 1.8.1;
# default 256 MiB: a small guest boots faster under emulation; empty for none), hostname.
bundle() {
  local dir=$1; shift
  local -A o=([cwd]=/ [uid]=0 [gid]=0 [readonly]=false [annotation]=true [memory]=$((256 << 20)) [hostname]=krun)
  local kv; for kv in "$@"; do o[${kv%%=*}]=${kv#*=}; done
  local -n args_ref=${o[args]} env_ref=${o[env]}
  mkdir -p "$dir"
  cp -a "$work/base" "$dir/rootfs"
  cat >"$dir/rootfs/report.sh" <<'REPORT'
#!/bin/sh
echo "R argc=$#"
i=0
for a in "$@"; do i=$((i+1)); echo "R arg$i=[$a]"; done
echo "R pwd=[$(pwd)]"
echo "R id=[$(id -u):$(id -g)]"
echo "R nproc=[$(grep -c ^processor /proc/cpuinfo)]"
echo "R memtotal_mib=[$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))]"
tr '\0' '\n' </proc/$$/environ | sort | sed 's/^/R env /'
echo "E to stderr" >&2
exit "${REPORT_EXIT:-0}"
REPORT
  chmod 755 "$dir/rootfs/report.sh"
  local annotations='' resources=''
  [[ ${o[annotation]} == true ]] && annotations='"annotations":{"run.oci.handler":"krun"},'
  [[ -n ${o[memory]} ]] && resources=",\"resources\":{\"memory\":{\"limit\":${o[memory]}}}"
  cat >"$dir/config.json" <<JSON
{"ociVersion":"1.0.2",$annotations
 "process":{"terminal":false,"user":{"uid":${o[uid]},"gid":${o[gid]}},
  "args":[$(json_strings "${args_ref[@]}")],"env":[$(json_strings "${env_ref[@]}")],"cwd":"${o[cwd]}",
  "capabilities":{"bounding":["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"],
   "effective":["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"],
   "permitted":["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"]},
  "noNewPrivileges":true},
 "root":{"path":"rootfs","readonly":${o[readonly]}},
 "hostname":"${o[hostname]}",
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}],
 "linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]$resources}}
JSON
}
# run_fg ID BUNDLE: `crun run` in the foreground on CPU 0 (crun 1.8.1 gives the VM one vCPU
# per CPU of its affinity; one boots faster); sets out, err (\r stripped), rc and r (the
# R-lines of out).
run_fg() {
  local id=$1 b=$2; shift 2
  taskset -c 0 "$CRUN" --root "$STATE" --cgroup-manager=disabled run --bundle "$b" "$id" </dev/null >"$work/out" 2>"$work/err"; rc=$?
  out=$(tr -d '\r' <"$work/out"); err=$(tr -d '\r' <"$work/err")
  r=$(grep -a '^R ' <<<"$out")
}
has() { grep -aqxF -- "$1" <<<"$r"; }
