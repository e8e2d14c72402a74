# Sourced by tests/vm/85..8c-tsi-*.test.sh (inside the test host): the busybox rootfs with the
# guest probe (85-tsi-probe.c), the runner (40-init-run.c), host-side servers (python3, on the
# test host's loopback only: it has no NIC), and helpers. The guest reaches the test host's
# loopback as 203.0.113.2 (the TSI kernel's name for the host's 127.0.0.1; the guest's own
# loopback stays in the guest). Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
command -v python3 >/dev/null || skip "no python3 in the test host (host-side servers)"
PROBE=$PWD/.tools/tsi-probe-$(cat tests/vm/85-tsi-probe.c | sha256sum | cut -c1-16)
[[ -x $PROBE ]] || skip "probe not built (tests/vm/85-tsi.prepare.sh)"
# The runner and the busybox tree, built on the machine by 85-tsi.prepare.sh (here only if that
# did not run).
run_build tests/vm/40-init-build.sh
RUN=$(bin run) base=$(bin rootfs)
work=$(mktemp -d /tmp/zkrun-tsi-vm.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ROOTFS=$work/rootfs
cp -a "$base" "$ROOTFS" || { echo "FAIL: copy of the rootfs"; exit 1; }
cp "$PROBE" "$ROOTFS/bin/tsi-probe"
HOST=203.0.113.2
# vm [RUNNER OPTIONS] -- SCRIPT: runs SCRIPT with the guest's /bin/sh; sets out, p (P-lines), rc.
# `timeout -k`: krun_start_enter forwards SIGTERM to the guest's workload, so SIGTERM alone
# cannot end a hung VM; SIGKILL 10 s later does.
vm() {
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  printf '%s\n' "$1" >"$ROOTFS/t.sh"
  out=$(env -i PATH=/bin:/sbin:/usr/bin:/usr/sbin timeout -k 10 600 "$RUN" "${opts[@]}" "$ROOTFS" /bin/sh /t.sh </dev/null 2>&1); rc=$?
  out=$(tr -d '\r' <<<"$out")
  p=$(grep -a '^P ' <<<"$out")
}
has() { grep -aqxF -- "$1" <<<"$p"; }
# A free TCP port on the test host's loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# http_server DIR PORT: python's http.server on 127.0.0.1:PORT, waits until it answers.
http_server() {
  python3 -m http.server --bind 127.0.0.1 --directory "$1" "$2" >"$work/http-$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$2),1)" 2>/dev/null && return 0; sleep 0.2; done
  echo "FAIL: http server on 127.0.0.1:$2 did not start"; exit 1
}
# The TSI host side exists when a guest connect to the host's loopback gets through. Probed once
# per test-host boot and build (a VM boot costs ~10 s of emulated CPU): the marker lives in the
# host's fresh /tmp, keyed by the runner and the library it loads. Only a skip depends on it: with
# the marker, a missing host side fails the test instead.
need_tsi_host() { # PORT of a host listener
  local marker
  marker=/tmp/zkrun-tsi-host-ok.$(stat -L -c %s.%Y "$prefix/lib/libkrun.so.1").$(basename "$RUN")
  [[ -e $marker ]] && return 0
  vm -- "tsi-probe connect $HOST $1"
  if has "P connect=ENETUNREACH"; then
    skip "the TSI host side is not there (a guest connect to the host says ENETUNREACH: no vsock device or TSI service in this build)"
  fi
  has "P connect=OK" && : >"$marker"
  return 0
}
# vm_bg, wait_line, vm_end: the VM in the background.
source "$(dirname "${BASH_SOURCE[0]}")/bg-vm-lib.sh"
# listening ADDRHEX PORT: the test host has a TCP listener on that address (/proc/net/tcp).
tcp_listening() { # "0100007F" or "00000000", port; an IPv6 socket bound to the v4-mapped form counts
  awk -v a="$1" -v port="$(printf '%04X' "$2")" 'NR > 1 && $4 == "0A" && ($2 == a ":" port || $2 == "0000000000000000FFFF0000" a ":" port || (a == "00000000" && $2 == "00000000000000000000000000000000:" port)) { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}
tcp_listening_any_addr() { # port: any TCP listener on the test host at this port
  awk -v port="$(printf '%04X' "$1")" 'NR > 1 && $4 == "0A" { split($2, x, ":"); if (x[2] == port) f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}
# Kernel trouble since init started (boot-time CPUID warnings of the nested host are not ours).
guest_oops_check='if dmesg | sed -n "/Run \/init.krun/,\$p" | grep -qE "BUG:|Oops|general protection|WARNING:|Call Trace"; then echo "P kernel=oops"; dmesg | sed -n "/Run \/init.krun/,\$p" | tail -40; fi'
