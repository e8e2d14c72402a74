# Shared by tests/vm/1x-*.test.sh (sourced). Sets DRV (the VMM driver), KERNEL (our vmlinux),
# INITRD (the test initramfs) and CMDLINE, or exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (these tests run inside the test host: tests/host/run)"
KERNEL=${ZKRUN_KERNEL:-$(kernelfw/build-kernel.sh --print-path 2>/dev/null || true)}
[[ -n $KERNEL && -f $KERNEL ]] || skip "no guest kernel (kernelfw/build-kernel.sh --print-path gave '${KERNEL}')"
# Built by tests/vm/10-vmm.prepare.sh at native speed; rebuilt here only when missing, since
# compiling inside the test host runs under TCG (~15 min) and sibling sources change all day.
DRV=zig-out/vmm-test/vmm_driver INITRD=zig-out/vmm-test/initramfs.cpio
[[ -x $DRV ]] || DRV=$(tests/vm/boot/build-driver.sh) || { echo "driver build failed"; exit 1; }
[[ -s $INITRD ]] || INITRD=$(tests/vm/boot/make-initramfs.sh) || { echo "initramfs build failed"; exit 1; }
# libkrun's console (virtio-console hvc0, implicit; its output goes to --console-output).
CMDLINE="console=hvc0 reboot=k panic=-1 loglevel=4 rdinit=/init"
# The legacy path: COM1 (our 16550A) as ttyS0, plus the early serial console (polled 0x3f8).
CMDLINE_SERIAL="console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 loglevel=4 rdinit=/init"
fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails+1)); [[ -n ${3:-} ]] && echo "$3" | tail -40 | sed 's/^/     | /'; fi
}
