# Sourced by tests/vm/2x-capi-*.test.sh (inside the test host): our guest kernel, the VMM tests'
# initramfs (tests/vm/boot: a static init that prints "ZKRUN-TEST ..." lines and reboots), and
# a C compiler pointed at the installed header and libkrun.so.1. Exits 77 saying what is missing.
needs_libkrunfw=0
source "$(dirname "${BASH_SOURCE[0]}")/../../vm/prologue.sh"
KERNEL=${ZKRUN_KERNEL:-$(kernelfw/build-kernel.sh --print-path 2>/dev/null || true)}
[[ -n $KERNEL && -f $KERNEL ]] || skip "no guest kernel (kernelfw/build-kernel.sh --print-path gave '${KERNEL}')"
# Built on the machine by tests/vm/20-capi.prepare.sh; built here only if that did not run.
run_build tests/native/capi/vm-build.sh
INITRD=$(bin initrd)
CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 loglevel=4 rdinit=/init"
# No init and panic=0: the kernel panics and stays up, a guest that never ends by itself.
HANG_CMDLINE="console=ttyS0 reboot=k panic=0 loglevel=4 rdinit=/zkrun-no-such-init root=/dev/zkrun-none"
work=$(mktemp -d /tmp/zkrun-capi-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
