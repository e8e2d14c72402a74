#!/usr/bin/env bash
# Network bench (figures for BENCHMARKS.md "TSI" and "virtio-net"), all in ONE test-host run:
# the same client (tests/bench/tsi-bench.c, static, both ends) against a server on the test
# host's loopback, through
#   1. the test host's own loopback (native),
#   2. zkrun TSI (no NIC),
#   3. zkrun virtio-net + passt (krun_add_net_unixstream),
#   4. QEMU (microvm, -accel kvm, same guest kernel, virtio-net-device) + passt (-netdev stream),
#   5. zkrun virtio-net on a tap device made here (198.51.100.1/24, guest .2), with the vnet
#      header's offloads (COMPAT_NET_FEATURES: CSUM, GUEST_CSUM/TSO4, HOST_TSO4) and without
#      (CSUM and GUEST_CSUM only: every frame at most the MTU, as before the vnet header),
#   6. QEMU user networking (slirp),
# each: connect latency (median, p99 of 200 sequential connects), throughput both ways (16 MiB),
# request rate (1 KiB request/response on one connection); then the VMM's RSS and fds with 1000
# open guest TCP sockets (last: it loads the test host's kernel most).
# Every guest step runs under `timeout` and every VM under a whole-VM timeout, so one hang
# costs its step, never the run. The test host's CPU is emulated (TCG): compare ratios only.
# passt and the QEMU guests use 10.0.2.15/24 with gateway 10.0.2.2, which both passt and slirp
# map to the host's loopback. The test host has no NIC: passt takes its template from a dummy
# interface made here.
# TSI_BENCH_ONLY=passt: only the passt comparison (zkrun and QEMU), bulk transfers only, plus, with
# TSI_BENCH_OLD_LIB=/path/to/an/older/libkrun.so.1, zkrun + passt once more through that build
# (preloaded), for before/after figures. Every passt guest prints "M rx_buffers_kib": MemFree
# taken by bringing eth0 up (Linux fills its receive ring in virtnet_open).
# Exit status 1 when one of zkrun's own figures (TSI, tap, the 1000-socket hold) is missing; a
# missing figure behind passt or QEMU is listed ("tsi: missing: ...") but not counted.
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
  echo "tsi: machine $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  exec tests/host/run --timeout 1500 env ZKRUN_BENCH_INSIDE=1 TSI_BENCH_ONLY="${TSI_BENCH_ONLY:-}" TSI_BENCH_OLD_LIB="${TSI_BENCH_OLD_LIB:-}" "$0"
fi

source tests/vm/85-tsi-lib.sh
cp "$TB" "$ROOTFS/bin/tsi-bench"
ulimit -n 4096   # the VMM holds one host socket per guest socket
SP=$(free_port)
"$TB" serve "$SP" >"$work/serve.log" 2>&1 &
pids+=($!)
sleep 0.5
only=${TSI_BENCH_ONLY:-}
[[ $only == passt ]] || need_tsi_host "$SP"
N=200 MIB=16 RR=1000 STEP=100
echo "tsi: $(date -u +%F), test host $(uname -r), $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# fig PREFIX OUTPUT: "B key value" lines as figures.
fig() {
  awk -v pre="$1" '$1 == "B" {
    k = $2; u = ""
    if (sub(/_us$/, "", k)) u = "us"; else if (sub(/_MBps$/, "", k)) u = "MB/s"; else if (sub(/_per_s$/, "", k)) u = "req/s"
    if (k == "error") { printf "tsi: %s: FAILED step %s\n", pre, $3; next }
    if (u == "") next
    gsub(/_/, " ", k); if (k == "rr") k = "1 KiB request/response"
    printf "tsi: %s, %s: %s %s\n", pre, k, $3, u }' <<<"$2"
}
# steps IP: the guest script running the four workloads, each under busybox timeout (exit 143
# or 124: the step hung and was killed).
steps() {
  local s
  local list=("lat $N" "tput $MIB" "tputin $MIB" "rr $RR")
  [[ ${TSI_BENCH_ONLY:-} == passt ]] && list=("tput $MIB" "tputin $MIB") # the bulk transfers only
  for s in "${list[@]}"; do
    set -- $s
    echo "busybox timeout $STEP tsi-bench $1 $IP $SP $2 || echo \"B error $1 exit=\$?\""
  done
}
declare -A res ends # each side's "B" lines; how its VM ended (zkrun's own sides)
if [[ $only != passt ]]; then
native=$(for s in "lat $N" "tput $MIB" "tputin $MIB" "rr $RR"; do set -- $s; timeout $STEP "$TB" "$1" 127.0.0.1 "$SP" "$2"; done)
fig "test-host loopback (native)" "$native"
res[native]=$native

IP=$HOST
vm -- "$(steps)"
echo "$out" | grep -a '^B ' | sed 's/^/guest (TSI): /'
res[tsi]=$(grep -a '^B ' <<<"$out")
ends[tsi]="exit $rc; last lines: $(grep -av '^B ' <<<"$out" | tail -n 15)"
fig "zkrun guest via TSI" "${res[tsi]}"
fi

# passt, one instance per guest (-1: it exits when its guest disconnects).
memfree='sed -n "s/^MemFree: *\([0-9]*\).*/\1/p" /proc/meminfo'
netup="[ -e /proc/meminfo ] || /bin/busybox mount -t proc proc /proc # QEMU's guest runs this as init
m0=\$($memfree)
"'ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || echo "B error ifup"
sleep 1
'"echo \"M rx_buffers_kib \$((m0 - \$($memfree)))\""
passt_ok=0
if ! command -v passt >/dev/null; then
  echo "tsi: no passt in the test host: no passt comparison"
elif ip link add zkp type dummy && ip addr add 192.0.2.1/24 dev zkp && ip link set zkp up &&
  ip route add default via 192.0.2.254 dev zkp; then
  # Gone with the run (its address and default route too): later tests in the same test host
  # (tests/vm/96's zk0) add their own.
  trap 'ip link del zkp 2>/dev/null; cleanup' EXIT
  passt_ok=1
else
  echo "tsi: could not make passt's template interface: no passt comparison"
fi
# In /tmp itself: passt drops to nobody, which cannot reach into the 0700 scratch directory.
PS=/tmp/zkrun-bench-passt-$$.sock
passt_start() { # LOGNAME
  rm -f "$PS"
  passt -f -1 -i zkp -s "$PS" -a 10.0.2.15 -n 24 -g 10.0.2.2 >"$work/$1.log" 2>&1 &
  passt_pid=$!
  for _ in $(seq 150); do [[ -S $PS ]] && break; sleep 0.2; done
  [[ -S $PS ]] || { echo "tsi: passt did not start"; grep -v 'to syslog' "$work/$1.log" | tail -5; return 1; }
}
passt_stop() { # LOGNAME
  if kill -0 "$passt_pid" 2>/dev/null; then kill "$passt_pid"; wait "$passt_pid" 2>/dev/null
  else wait "$passt_pid"; local rc=$?; [[ $rc -ne 0 ]] && echo "tsi: passt exited with status $rc"; fi
  [[ -s $work/$1.log ]] && grep -v 'to syslog' "$work/$1.log" | tail -3 | sed 's/^/  passt: /'
  rm -f "$PS"
}
IP=10.0.2.2
if [[ $passt_ok == 1 ]] && passt_start passt-zkrun; then
  vm -P "$PS" -- "$netup
$(steps)"
  passt_stop passt-zkrun
  echo "$out" | grep -a '^[BM] ' | sed 's/^/guest (zkrun + passt): /'
  res[zpasst]=$(grep -a '^B ' <<<"$out")
  fig "zkrun guest via virtio-net + passt" "${res[zpasst]}"
fi
if [[ -n ${TSI_BENCH_OLD_LIB:-} && $passt_ok == 1 ]] && passt_start passt-zkrun-old; then
  realrun=$RUN RUN=$work/run-old.sh
  printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$@"\n' "$TSI_BENCH_OLD_LIB" "$realrun" >"$RUN" && chmod +x "$RUN"
  vm -P "$PS" -- "$netup
$(steps)"
  RUN=$realrun
  passt_stop passt-zkrun-old
  echo "$out" | grep -a '^[BM] ' | sed 's/^/guest (zkrun + passt, older build): /'
  res[zpasstold]=$(grep -a '^B ' <<<"$out")
  fig "zkrun (older build $TSI_BENCH_OLD_LIB) guest via virtio-net + passt" "${res[zpasstold]}"
fi

# QEMU with the same kernel and the same workload; the root comes over virtio-fs (virtiofsd).
KERNEL=$(kernelfw/build-kernel.sh --print-path 2>/dev/null)
VIRTIOFSD=/usr/lib/qemu/virtiofsd
qemu_vm() { # NAME NETDEV...: runs the workload in QEMU; sets out
  local name=$1; shift
  local root=$work/qroot
  [[ -d $root ]] || { cp -a "$ROOTFS" "$root" && printf '#!/bin/sh\nexport PATH=/bin:/sbin:/usr/bin:/usr/sbin\n%s\n%s\necho "B done"\n/bin/busybox reboot -f\n' "$netup" "$(steps)" >"$root/qbench.sh" && chmod +x "$root/qbench.sh"; }
  rm -f "$work/vfsd.sock"
  "$VIRTIOFSD" --socket-path="$work/vfsd.sock" -o source="$root" -o cache=auto -f >"$work/vfsd-$name.log" 2>&1 &
  local vfsd=$!
  for _ in $(seq 100); do [[ -S $work/vfsd.sock ]] && break; sleep 0.1; done
  out=$(timeout 600 qemu-system-x86_64 -M microvm,acpi=off,memory-backend=mem -accel kvm -cpu host -m 256M -smp 1 \
    -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=256M,share=on -nodefaults -no-user-config -display none -no-reboot \
    -serial stdio -kernel "$KERNEL" -chardev socket,id=vfs,path="$work/vfsd.sock" \
    -device vhost-user-fs-device,chardev=vfs,tag=/dev/root "$@" -device virtio-net-device,netdev=n0,mac=52:54:00:12:34:56 \
    -append "console=ttyS0 quiet panic=-1 reboot=t rootfstype=virtiofs root=/dev/root rw init=/qbench.sh" \
    </dev/null 2>"$work/qemu-$name.log" | tr -d '\r')
  kill "$vfsd" 2>/dev/null; wait "$vfsd" 2>/dev/null
  grep -aq '^B done' <<<"$out" || { echo "tsi: QEMU ($name) did not finish"; echo "$out" | tail -10; tail -5 "$work/qemu-$name.log"; }
}
if [[ -n $KERNEL && -x $VIRTIOFSD ]] && command -v qemu-system-x86_64 >/dev/null; then
  if [[ $passt_ok == 1 ]] && passt_start passt-qemu; then
    qemu_vm passt -netdev stream,id=n0,server=off,addr.type=unix,addr.path="$PS"
    passt_stop passt-qemu
    echo "$out" | grep -a '^[BM] ' | sed 's/^/guest (QEMU + passt): /'
    res[qpasst]=$(grep -a '^B ' <<<"$out")
    fig "QEMU guest via virtio-net + passt" "${res[qpasst]}"
  fi
  qemu_ok=1
else
  echo "tsi: no QEMU, virtiofsd or guest kernel in the test host: no QEMU comparison"
fi

# A tap device, offloads on and off.
if [[ $only == passt ]]; then :
elif ip tuntap add dev zkt0 mode tap && ip addr add 198.51.100.1/24 dev zkt0 && ip link set zkt0 up; then
  IP=198.51.100.1
  tapup='ip link set eth0 up && ip addr add 198.51.100.2/24 dev eth0 || echo "B error ifup"'
  for mode in on off; do
    opt=(-T zkt0); [[ $mode == off ]] && opt+=(-O)
    vm "${opt[@]}" -- "$tapup
$(steps)"
    echo "$out" | grep -a '^B ' | sed "s/^/guest (zkrun + tap, offloads $mode): /"
    res[tap$mode]=$(grep -a '^B ' <<<"$out")
    ends[tap$mode]="exit $rc; last lines: $(grep -av '^B ' <<<"$out" | tail -n 15)"
    fig "zkrun guest via virtio-net + tap, offloads $mode" "${res[tap$mode]}"
  done
  ip link del zkt0
else
  echo "tsi: could not make a tap device: no tap figures"
fi

# QEMU user networking last among the NIC setups: its guest -> host step is the slowest.
if [[ ${qemu_ok:-0} == 1 && $only != passt ]]; then
  IP=10.0.2.2
  qemu_vm user -netdev user,id=n0
  echo "$out" | grep -a '^B ' | sed 's/^/guest (QEMU user): /'
  res[quser]=$(grep -a '^B ' <<<"$out")
  fig "QEMU guest via user networking (slirp)" "${res[quser]}"
fi

# Ratios against zkrun TSI (>1: TSI is better; connect latency inverted).
val() { awk -v k="$2" '$1 == "B" && $2 == k {print $3}' <<<"${res[$1]:-}"; }
for other in zpasst:"zkrun virtio-net + passt" qpasst:"QEMU + passt" quser:"QEMU user networking" native:"native loopback"; do
  key=${other%%:*} name=${other#*:}
  for k in connect_median_us guest_to_host_MBps host_to_guest_MBps rr_per_s; do
    a=$(val tsi $k) b=$(val "$key" $k)
    [[ -n $a && -n $b ]] || continue
    awk -v a="$a" -v b="$b" -v k="$k" -v n="$name" 'BEGIN { r = (k ~ /_us$/) ? b / a : a / b; if (b > 0 && a > 0) printf "tsi: ratio TSI / %s, %s: %.2f\n", n, k, r }'
  done
done
a=$(val zpasst guest_to_host_MBps) b=$(val qpasst guest_to_host_MBps) c=$(val zpasst host_to_guest_MBps) d=$(val qpasst host_to_guest_MBps)
[[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "tsi: ratio zkrun+passt / QEMU+passt, guest->host: %.2f\n", a / b }'
[[ -n $c && -n $d ]] && awk -v a="$c" -v b="$d" 'BEGIN { if (b > 0) printf "tsi: ratio zkrun+passt / QEMU+passt, host->guest: %.2f\n", a / b }'
a=$(val zpasstold guest_to_host_MBps) c=$(val zpasstold host_to_guest_MBps)
[[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "tsi: ratio older zkrun+passt / QEMU+passt, guest->host: %.2f\n", a / b }'
[[ -n $c && -n $d ]] && awk -v a="$c" -v b="$d" 'BEGIN { if (b > 0) printf "tsi: ratio older zkrun+passt / QEMU+passt, host->guest: %.2f\n", a / b }'
for k in guest_to_host_MBps host_to_guest_MBps rr_per_s; do
  a=$(val tapon $k) b=$(val tapoff $k)
  [[ -n $a && -n $b ]] && awk -v a="$a" -v b="$b" -v k="$k" 'BEGIN { if (b > 0) printf "tsi: ratio tap offloads on / off, %s: %.2f\n", k, a / b }'
done

# Every side that ran must have given its four figures (each step prints one). A missing figure
# of zkrun's own paths (TSI, the tap) fails the bench; one missing behind passt (zkrun's or QEMU's
# guest) or QEMU user networking is listed but does not: Debian's passt resets bulk guest -> host
# transfers under this emulated load (BENCHMARKS.md "TSI"), which is not ours to fix here.
status=0
sides=(zpasst:"zkrun virtio-net + passt":0 qpasst:"QEMU + passt":0)
[[ $only == passt ]] || sides=(tsi:"zkrun TSI":1 tapon:"zkrun tap, offloads on":1 tapoff:"zkrun tap, offloads off":1 quser:"QEMU user networking":0 "${sides[@]}")
for side in "${sides[@]}"; do
  key=${side%%:*} rest=${side#*:} name=${rest%:*} must=${rest##*:}
  [[ -v res[$key] ]] || { [[ $must == 1 ]] && { echo "tsi: MISSING: $name did not run"; status=1; }; continue; }
  keys=(guest_to_host_MBps host_to_guest_MBps); [[ $only == passt ]] || keys=(connect_median_us "${keys[@]}" rr_per_s)
  for k in "${keys[@]}"; do
    [[ -n $(val "$key" $k) ]] && continue
    if [[ $must == 1 ]]; then
      echo "tsi: MISSING: $name, $k (fails the bench); its VM: ${ends[$key]:-?}"; status=1
    else echo "tsi: missing: $name, $k (not counted: see the step's error above)"; fi
  done
done
[[ $only == passt ]] && exit $status
# 1000 open guest sockets: the runner's RSS and fds before and after.
rm -f "$ROOTFS/go"
vm_bg -- "
ulimit -n 4096
echo 'P base'
while ! ls / | grep -qx go; do sleep 0.2; done
busybox timeout 300 tsi-bench hold $HOST $SP 1000 /done
"
if wait_line '^P base' 300; then
  sleep 2
  vmm=$(pgrep -f -- "^$RUN " | head -1)
  rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$vmm/status") fd0=$(ls "/proc/$vmm/fd" | wc -l)
  touch "$ROOTFS/go"
  if wait_line '^B held 1000' 240; then
    sleep 2
    rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$vmm/status") fd1=$(ls "/proc/$vmm/fd" | wc -l)
    echo "tsi: VMM RSS with the guest idle: $rss0 KiB"
    echo "tsi: VMM RSS growth per 1000 open guest TCP sockets: $((rss1 - rss0)) KiB"
    echo "tsi: VMM fds growth per 1000 open guest TCP sockets: $((fd1 - fd0)) fds"
  else
    echo "tsi: holding 1000 sockets failed"; tail -5 "$work/bg.out"; status=1
  fi
else
  echo "tsi: the hold VM did not start"; tail -5 "$work/bg.out"; status=1
fi
vm_end
exit $status
