#!/usr/bin/env bash
# TSI bench (figures for BENCHMARKS.md "TSI"): guest -> host TCP through TSI against the same
# client on the test host's own loopback, in one test-host run: connect latency (median, p99 of
# 200 sequential connects), throughput both ways (64 MiB), request rate (1 KiB request/response
# on one connection), and the VMM's RSS and fds with 1000 open guest TCP sockets (before/after).
# Both ends are tests/bench/tsi-bench.c (static). Guests need real KVM: this runs itself inside
# the test host (tests/host/run), whose CPU is emulated (TCG): compare ratios, not absolutes.
# The same guest workload through virtio-net + passt (krun_add_net_unixstream; passt maps its
# gateway address to the host's loopback) follows in the same host run, when passt is there.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
TB=$PWD/.tools/tsi-bench-$(sha256sum <tests/bench/tsi-bench.c | cut -c1-16)
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  [[ -e zig-out/lib/libkrun.so.1 ]] || { echo "tsi: libkrun not built (make build)"; exit 1; }
  tests/vm/85-tsi.prepare.sh >/dev/null || exit 1
  if [[ ! -x $TB ]]; then
    zig cc -target x86_64-linux-musl -static -O2 -Wall -Wextra -o "$TB.tmp" tests/bench/tsi-bench.c && mv "$TB.tmp" "$TB" || exit 1
  fi
  [[ -x tests/host/run ]] || { echo "tsi: SKIP: no test host (tests/host/run) to boot Linux guests in"; exit 77; }
  exec tests/host/run --timeout 1500 env ZKRUN_BENCH_INSIDE=1 "$0"
fi

source tests/vm/85-tsi-lib.sh
cp "$TB" "$ROOTFS/bin/tsi-bench"
ulimit -n 4096   # the VMM holds one host socket per guest socket
SP=$(free_port)
"$TB" serve "$SP" >"$work/serve.log" 2>&1 &
pids+=($!)
sleep 0.5
need_tsi_host "$SP"
N=200 MIB=64 RR=2000
# fig PREFIX OUTPUT: "B key value" lines as figures.
fig() {
  awk -v pre="$1" '$1 == "B" {
    k = $2; u = ""
    if (sub(/_us$/, "", k)) u = "us"; else if (sub(/_MBps$/, "", k)) u = "MB/s"; else if (sub(/_per_s$/, "", k)) u = "req/s"
    if (u == "") next
    gsub(/_/, " ", k); if (k == "rr") k = "1 KiB request/response"
    printf "tsi: %s, %s: %s %s\n", pre, k, $3, u }' <<<"$2"
}
native=$("$TB" lat 127.0.0.1 "$SP" $N; "$TB" tput 127.0.0.1 "$SP" $MIB; "$TB" tputin 127.0.0.1 "$SP" $MIB; "$TB" rr 127.0.0.1 "$SP" $RR)
fig "test-host loopback (native)" "$native"
vm -- "
tsi-bench lat $HOST $SP $N
tsi-bench tput $HOST $SP $MIB
tsi-bench tputin $HOST $SP $MIB
tsi-bench rr $HOST $SP $RR
"
echo "$out" | grep -a '^B ' | sed 's/^/guest: /'
grep -aq '^B error' <<<"$out" && { echo "tsi: a guest run failed"; echo "$out" | tail -20; exit 1; }
fig "guest via TSI" "$(grep -a '^B ' <<<"$out")"

# 1000 open guest sockets: the runner's RSS and fds before and after.
rm -f "$ROOTFS/go"
vm_bg -- "
ulimit -n 4096
echo 'P base'
while ! ls / | grep -qx go; do sleep 0.2; done
tsi-bench hold $HOST $SP 1000 /done
"
wait_line '^P base' 300 || { echo "tsi: the hold VM did not start"; cat "$work/bg.out"; exit 1; }
sleep 2
vmm=$(pgrep -f -- "^$RUN " | head -1)
[[ -n $vmm ]] || { echo "tsi: no VMM process found"; exit 1; }
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$vmm/status") fd0=$(ls "/proc/$vmm/fd" | wc -l)
touch "$ROOTFS/go"
if wait_line '^B held 1000' 600; then
  sleep 2
  rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$vmm/status") fd1=$(ls "/proc/$vmm/fd" | wc -l)
  echo "tsi: VMM RSS with the guest idle: $rss0 KiB"
  echo "tsi: VMM RSS growth per 1000 open guest TCP sockets: $((rss1 - rss0)) KiB"
  echo "tsi: VMM fds growth per 1000 open guest TCP sockets: $((fd1 - fd0)) fds"
else
  echo "tsi: holding 1000 sockets failed"; tail -5 "$work/bg.out"
fi
vm_end
grep -a '^B error' <<<"$out" && exit 1

# virtio-net + passt. The test host has no NIC: passt takes its addresses and routes from a
# dummy interface made here. The guest is configured statically (10.0.2.15/24, gateway
# 10.0.2.2, which passt maps to the host's loopback).
command -v passt >/dev/null || { echo "tsi: no passt in the test host: no comparison"; exit 0; }
ip link add zkp type dummy && ip addr add 192.0.2.1/24 dev zkp && ip link set zkp up &&
  ip route add default via 192.0.2.254 dev zkp || { echo "tsi: could not make passt's template interface: no comparison"; exit 0; }
PS=/tmp/zkrun-tsi-bench-passt-$$.sock
passt -f -1 -i zkp -s "$PS" -a 10.0.2.15 -n 24 -g 10.0.2.2 >"$work/passt.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $PS ]] && break; sleep 0.2; done
[[ -S $PS ]] || { echo "tsi: passt did not start: no comparison"; cat "$work/passt.log"; exit 0; }
vm -P "$PS" -- "
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
tsi-bench lat 10.0.2.2 $SP $N
tsi-bench tput 10.0.2.2 $SP $MIB
tsi-bench tputin 10.0.2.2 $SP $MIB
tsi-bench rr 10.0.2.2 $SP $RR
"
rm -f "$PS"
echo "$out" | grep -a '^B ' | sed 's/^/guest (passt): /'
if grep -aq '^B error' <<<"$out" || ! grep -aq '^B rr_per_s' <<<"$out"; then
  echo "tsi: the passt run failed: no comparison"; echo "$out" | tail -15; tail -5 "$work/passt.log"; exit 0
fi
fig "guest via virtio-net + passt" "$(grep -a '^B ' <<<"$out")"
exit 0
