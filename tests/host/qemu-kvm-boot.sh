#!/usr/bin/env bash
# QEMU with -accel kvm boots the bundled kernel (kernelfw/build-kernel.sh --print-path) as a
# microvm with a tiny busybox initramfs whose init prints a marker and reboots: the baseline our
# own VMM must match. Needs real KVM (run it inside the test host: tests/host/run).
# Usage: qemu-kvm-boot.sh [RUNS]  — prints, per run, "qemu_kvm_boot_ms N" (QEMU launch to the
# marker on the console) and "qemu_kvm_exit_ms N" (launch to QEMU's exit); exit status 0 only if
# every run printed the marker and QEMU exited 0. On failure the console and QEMU's stderr follow.
set -uo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-1}
kernel=${ZKRUN_KERNEL:-$(kernelfw/build-kernel.sh --print-path)}
[[ -f $kernel ]] || { echo "qemu-kvm-boot: no kernel at $kernel"; exit 1; }
[[ -c /dev/kvm ]] || { echo "qemu-kvm-boot: no /dev/kvm"; exit 1; }
work=$(mktemp -d /tmp/zkrun-qemu-kvm-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/proc"
cp /bin/busybox "$work/root/bin/busybox"
cat > "$work/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "ZKRUN-QEMU-KVM-BOOT-OK cpus=$(/bin/busybox nproc) $(/bin/busybox grep MemTotal /proc/meminfo)"
/bin/busybox reboot -f
INIT
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio --quiet -o -H newc) > "$work/initramfs.cpio" || { echo "cpio failed"; exit 1; }

# Times come from bash's $EPOCHREALTIME (no process per sample: under TCG each exec costs ~0.1 s).
ms_now() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
fail=0
for i in $(seq "$runs"); do
  con="$work/console.$i"; : > "$con"
  t0=$(ms_now)
  # The console arrives on QEMU's stdout; the reader notes when the marker line comes in.
  marked=$(timeout -k 10 300 qemu-system-x86_64 -M microvm,acpi=off -accel kvm -cpu host -m 256M -smp 1 \
      -nodefaults -no-user-config -display none -no-reboot \
      -serial stdio -kernel "$kernel" -initrd "$work/initramfs.cpio" \
      -append "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init" </dev/null 2>"$work/qemu.log" |
    { m=''; while IFS= read -r line; do
        printf '%s\n' "$line" >>"$con"
        [[ -z $m && $line == *ZKRUN-QEMU-KVM-BOOT-OK* ]] && m=$(ms_now)
      done; echo "$m"; }
    exit "${PIPESTATUS[0]}")
  rc=$?
  t1=$(ms_now)
  if [[ $rc -ne 0 || -z $marked ]]; then
    echo "qemu-kvm-boot: run $i failed: QEMU status $rc, marker $([[ -n $marked ]] && echo seen || echo missing)"
    sed 's/^/  console | /' "$con" | tr -d '\r' | tail -40
    sed 's/^/  qemu | /' "$work/qemu.log"
    fail=1
    continue
  fi
  grep -h ZKRUN-QEMU-KVM-BOOT-OK "$con" | tr -d '\r'
  echo "qemu_kvm_boot_ms $((marked - t0))"
  echo "qemu_kvm_exit_ms $((t1 - t0))"
done
exit $fail
