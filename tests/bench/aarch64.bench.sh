#!/usr/bin/env bash
# aarch64 bench (figures for BENCHMARKS.md "aarch64"): in the aarch64 test host (QEMU TCG with EL2,
# real arm64 KVM inside), boot to workload exit and KVM exits per boot, zkrun against QEMU's own
# `qemu-system-aarch64 -M virt -accel kvm` booting the same kernel (our aarch64 Image), runs
# alternating (zkrun, zkrun+initramfs, QEMU, zkrun, ...), medians.
#   zkrun: tests/aarch64/capi-run (the C API, libkrunfw.so.5 holding our Image), 1 vCPU, 256 MiB,
#          virtio-fs root, /init.krun runs `/bin/busybox true`; wall time from process start to
#          its exit (krun_start_enter returns the workload's status by exiting).
#   zkrun+initramfs: the same, but krun_set_kernel(our Image, RAW, the QEMU side's initramfs) and
#          the console on the serial port (ttyS0; QEMU's is its PL011): the same kernel and the
#          same /init as QEMU, so the two differ only in the VMM; it must end by the guest's
#          power-off (KRUN_EXIT_REASON_SHUTDOWN) with the marker on the console.
#   QEMU:  qemu-system-aarch64 7.2 (Debian's arm64 build, tests/bench/aarch64-qemu.sh) -M virt,
#          gic-version=3 -accel kvm -cpu host, 1 vCPU, 256 MiB, the same Image, an initramfs whose
#          /init (tests/bench/aarch64-init.zig) prints a marker and powers off; wall time from
#          process start to its exit.
# Exits per boot, the same method for both: the kvm:kvm_exit tracepoint with a hist trigger,
# cleared before each run, its total read after (every VM exit of every vCPU of the one VM that
# ran; the tracepoint fires where KVM counts its per-vCPU "exits" stat, arch/arm64/kvm/arm.c). A
# method check compares it once with KVM's own per-vCPU counter in debugfs
# (/sys/kernel/debug/kvm/<pid>-<fd>/exits, the sum over the VM's vCPUs) for a QEMU run kept alive by -no-shutdown.
# THP: the test host's /sys/kernel/mm/transparent_hugepage/enabled is printed, and per run the
# growth of /proc/vmstat's thp_fault_alloc (huge pages the run's faults got; zkrun advises its
# guest RAM MADV_HUGEPAGE, as QEMU does).
# ZKRUN_BENCH_BASELINE=DIR (optional, a `zig build -Dtarget=aarch64-linux-gnu --prefix DIR` of
# another commit plus DIR/bin/capi-run, as 20-capi.prepare.sh builds it): that build runs too, in
# the same rounds, as "baseline" (before/after a change in one host boot).
# The builds run here on the machine first; then the test host boots once.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
runs=${ZKRUN_BENCH_RUNS:-3}
b="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/bench/aarch64"
if [[ ${ZKRUN_BENCH_INSIDE:-} != 1 ]]; then
  # On a fresh machine the aarch64 kernel is not built yet (`make bench` builds only the x86_64
  # one): build it here, once (cached; ~25+ min cold on 2 cores, a no-op when cached).
  kernelfw/build-kernel.sh --arch aarch64 >&2 || { echo "aarch64: building the aarch64 kernel failed"; exit 1; }
  tests/aarch64/20-capi.prepare.sh >/dev/null || { echo "aarch64: building zkrun for aarch64 failed"; exit 1; }
  capi="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/aarch64-capi"
  [[ -f $capi/NO-KERNEL ]] && { echo "aarch64: SKIP: $(cat "$capi/NO-KERNEL")"; exit 77; }
  qemu=$(tests/bench/aarch64-qemu.sh) || { echo "aarch64: SKIP: no arm64 QEMU (tests/bench/aarch64-qemu.sh)"; exit 77; }
  mkdir -p "$b/root"
  zig build test-guests --summary none || exit 1
  cp zig-out/test-guests/aarch64-bench-init "$b/root/init"
  (cd "$b/root" && echo init | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$b/initrd.gz"
  ln -sfn "$(kernelfw/build-kernel.sh --arch aarch64 --print-path)" "$b/Image"
  ln -sfn "$qemu" "$b/qemu"
  exec tests/host/run --arch aarch64 --timeout "${ZKRUN_BENCH_TIMEOUT:-1500}" env ZKRUN_BENCH_INSIDE=1 ZKRUN_BENCH_RUNS="$runs" "$0"
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms_now() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
q=$b/qemu
qemu=("$q/lib/ld-linux-aarch64.so.1" --library-path "$q/lib/aarch64-linux-gnu:$q/usr/lib/aarch64-linux-gnu"
  "$q/usr/bin/qemu-system-aarch64" -M virt,gic-version=3 -accel kvm -cpu host -m 256 -smp 1
  -nodefaults -no-user-config -display none -kernel "$b/Image" -initrd "$b/initrd.gz"
  -append "console=ttyAMA0 panic=-1 quiet rdinit=/init")

mounted() { grep -q " $1 " /proc/mounts; }
mounted /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
tr=/sys/kernel/tracing
mounted $tr || mount -t tracefs tracefs $tr
ev=$tr/events/kvm/kvm_exit
[[ -f $ev/trigger ]] || { echo "aarch64: FAIL: no kvm:kvm_exit tracepoint in the test host's kernel"; exit 1; }
# Keyed by exit kind: ret 0 is a host interrupt (ARM_EXCEPTION_IRQ), else esr_ec the trap class
# (decimal: 1 WFx, 22 HVC (PSCI), 24 sysreg, 36 data abort: MMIO); ret 2 is a trap.
hk='hist:keys=ret,esr_ec:sort=hitcount.descending'
echo "$hk" >"$ev/trigger" || { echo "aarch64: FAIL: no hist triggers (CONFIG_HIST_TRIGGERS)"; exit 1; }
trap 'echo "!$hk" >"$ev/trigger" 2>/dev/null' EXIT
exits_reset() { echo "$hk:clear" >>"$ev/trigger"; }
exits_read() { awk '/^ *Hits:/ {print $2; exit}' "$ev/hist"; }
# "ret:N esr_ec:0xM hitcount:K" lines as "N/0xM:K" words.
exits_kinds() { awk '/hitcount:/ {gsub(/[{},]/, " "); r = e = h = ""; for (i = 1; i <= NF; i++) { if ($i == "ret:") r = $(i+1); if ($i == "esr_ec:") e = $(i+1); if ($i == "hitcount:") h = $(i+1) } printf "%s/%s:%s ", r, e, h }' "$ev/hist"; }

root=$(mktemp -d /tmp/aarch64-bench-root.XXXXXX)
mkdir -p "$root/bin" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
run=${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/aarch64-capi/bin/capi-run
base=${ZKRUN_BENCH_BASELINE:+$ZKRUN_BENCH_BASELINE/bin/capi-run}
echo "aarch64: test host THP: enabled $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo 'absent (no CONFIG_TRANSPARENT_HUGEPAGE)'), defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null || echo -)"
thp() { awk '$1 == "thp_fault_alloc" {print $2}' /proc/vmstat 2>/dev/null || echo 0; }
zw=() ze=() iw=() ie=() qw=() qe=() bw=() be=() zt=() bt=() qt=()
for i in $(seq "$runs"); do
  if [[ -n $base ]]; then
    exits_reset; t0=$(ms_now) h0=$(thp)
    "$base" "$root" /bin/busybox true >/tmp/zkrun-b.out 2>&1 || { echo "aarch64: baseline run $i failed:"; tail -20 /tmp/zkrun-b.out; exit 1; }
    bw+=($(( $(ms_now) - t0 ))); be+=($(exits_read)); bk=$(exits_kinds); bt+=($(( $(thp) - h0 )))
    echo "aarch64: run $i: baseline ${bw[-1]} ms ${be[-1]} exits, thp_fault_alloc +${bt[-1]}; by ret/esr_ec: $bk"
  fi
  exits_reset; t0=$(ms_now) h0=$(thp)
  "$run" "$root" /bin/busybox true >/tmp/zkrun.out 2>&1 || { echo "aarch64: zkrun run $i failed:"; tail -20 /tmp/zkrun.out; exit 1; }
  zw+=($(( $(ms_now) - t0 ))); ze+=($(exits_read)); zk=$(exits_kinds); zt+=($(( $(thp) - h0 )))
  exits_reset; t0=$(ms_now)
  "$run" -S -t ttyS0 -k "$b/Image" -i "$b/initrd.gz" "$root" /bin/busybox true >/tmp/zkrun-i.out 2>&1
  iw+=($(( $(ms_now) - t0 ))); ie+=($(exits_read)); ik=$(exits_kinds)
  grep -q ZKRUN-BENCH-INIT /tmp/zkrun-i.out && grep -q "reason 6" /tmp/zkrun-i.out || { echo "aarch64: zkrun initramfs run $i did not reach its init:"; tail -20 /tmp/zkrun-i.out; exit 1; }
  exits_reset; t0=$(ms_now) h0=$(thp)
  "${qemu[@]}" -serial file:/tmp/qemu.out -no-reboot >/tmp/qemu.err 2>&1 || { echo "aarch64: QEMU run $i failed:"; cat /tmp/qemu.err; exit 1; }
  qw+=($(( $(ms_now) - t0 ))); qe+=($(exits_read)); qk=$(exits_kinds); qt+=($(( $(thp) - h0 )))
  grep -q ZKRUN-BENCH-INIT /tmp/qemu.out || { echo "aarch64: QEMU run $i did not reach its init:"; tail -20 /tmp/qemu.out; exit 1; }
  echo "aarch64: run $i: zkrun ${zw[-1]} ms ${ze[-1]} exits, zkrun+initramfs ${iw[-1]} ms ${ie[-1]} exits, QEMU ${qw[-1]} ms ${qe[-1]} exits"
  echo "  thp_fault_alloc growth: zkrun +${zt[-1]}, QEMU +${qt[-1]}"
  echo "  exits by ret/esr_ec: zkrun $zk| zkrun+initramfs $ik| QEMU $qk"
done
zwm=$(printf '%s\n' "${zw[@]}" | median) zem=$(printf '%s\n' "${ze[@]}" | median)
iwm=$(printf '%s\n' "${iw[@]}" | median) iem=$(printf '%s\n' "${ie[@]}" | median)
qwm=$(printf '%s\n' "${qw[@]}" | median) qem=$(printf '%s\n' "${qe[@]}" | median)
echo "aarch64: zkrun boot to workload exit, process start->exit (median of $runs): $zwm ms"
echo "aarch64: zkrun same Image + initramfs as QEMU, boot to init exit (median of $runs): $iwm ms"
echo "aarch64: qemu -M virt -accel kvm boot to init exit, process start->exit (median of $runs): $qwm ms"
echo "aarch64: zkrun KVM exits per boot (median): $zem exits"
echo "aarch64: zkrun same Image + initramfs KVM exits per boot (median): $iem exits"
echo "aarch64: qemu -M virt -accel kvm KVM exits per boot (median): $qem exits"
if [[ -n $base ]]; then
  bwm=$(printf '%s\n' "${bw[@]}" | median) bem=$(printf '%s\n' "${be[@]}" | median)
  echo "aarch64: baseline boot to workload exit (median of $runs): $bwm ms"
  echo "aarch64: baseline KVM exits per boot (median): $bem exits"
  echo "aarch64: exits ratio zkrun/baseline: $(awk -v a="$zem" -v b="$bem" 'BEGIN {printf "%.2f", a/b}') x"
  echo "aarch64: wall ratio zkrun/baseline: $(awk -v a="$zwm" -v b="$bwm" 'BEGIN {printf "%.2f", a/b}') x"
  echo "aarch64: baseline exits ratio /qemu: $(awk -v a="$bem" -v b="$qem" 'BEGIN {printf "%.2f", a/b}') x"
fi
echo "aarch64: wall ratio zkrun/qemu: $(awk -v a="$zwm" -v b="$qwm" 'BEGIN {printf "%.2f", a/b}') x"
echo "aarch64: exits ratio zkrun/qemu: $(awk -v a="$zem" -v b="$qem" 'BEGIN {printf "%.2f", a/b}') x"
echo "aarch64: same initramfs wall ratio zkrun/qemu: $(awk -v a="$iwm" -v b="$qwm" 'BEGIN {printf "%.2f", a/b}') x"
echo "aarch64: same initramfs exits ratio zkrun/qemu: $(awk -v a="$iem" -v b="$qem" 'BEGIN {printf "%.2f", a/b}') x"

# Method check: the tracepoint's total against KVM's own per-vCPU stat for one QEMU run that stays
# alive after the guest's power-off (-no-shutdown), so its VM (and debugfs directory) still exist.
exits_reset
"${qemu[@]}" -serial file:/tmp/qemu-check.out -no-shutdown >/dev/null 2>&1 & qpid=$!
for _ in $(seq 600); do grep -q ZKRUN-BENCH-INIT /tmp/qemu-check.out 2>/dev/null && break; sleep 0.5; done
sleep 3
stat=$(cat /sys/kernel/debug/kvm/*-*/exits 2>/dev/null) hist=$(exits_read)
kill "$qpid"; wait "$qpid" 2>/dev/null
echo "aarch64: method check, one QEMU boot: kvm_exit tracepoint $hist, debugfs <pid>-<fd>/exits (KVM's own stat) ${stat:-unreadable}"
# QEMU's own start-up cost in this emulated host (loading ~100 shared libraries), with no VM.
t0=$(ms_now); "${qemu[@]:0:4}" -version >/dev/null; echo "aarch64: qemu-system-aarch64 -version (start-up alone, no VM): $(( $(ms_now) - t0 )) ms"
rm -rf "$root"
