# Sourced by tests/vm/2x-capi-*.test.sh (inside the test host): our guest kernel, the VMM tests'
# initramfs (tests/vm/boot: a static init that prints "ZKRUN-TEST ..." lines and reboots), and
# a C compiler pointed at the installed header and libkrun.so.1. Exits 77 saying what is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
skip() { echo "SKIP: $*"; exit 77; }
[[ -c /dev/kvm ]] || skip "no /dev/kvm (VM tests run inside the test host: tests/host/run)"
prefix=$PWD/zig-out
[[ -e $prefix/lib/libkrun.so.1 && -e $prefix/include/libkrun.h ]] || skip "zig-out/lib/libkrun.so.1 not built (zig build)"
KERNEL=${ZKRUN_KERNEL:-$(kernelfw/build-kernel.sh --print-path 2>/dev/null || true)}
[[ -n $KERNEL && -f $KERNEL ]] || skip "no guest kernel (kernelfw/build-kernel.sh --print-path gave '${KERNEL}')"
# Built on the machine by tests/vm/20-capi.prepare.sh; built here only if that did not run.
built=$(tests/native/capi/vm-build.sh) || { echo "FAIL: tests/native/capi/vm-build.sh"; exit 1; }
bin() { sed -n "s/^$1=//p" <<<"$built"; }
INITRD=$(bin initrd)
CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 loglevel=4 rdinit=/init"
# No init and panic=0: the kernel panics and stays up, a guest that never ends by itself.
HANG_CMDLINE="console=ttyS0 reboot=k panic=0 loglevel=4 rdinit=/zkrun-no-such-init root=/dev/zkrun-none"
work=$(mktemp -d /tmp/zkrun-capi-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
expect() { # description, condition, context
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); [[ -n ${3:-} ]] && echo "$3" | tail -40 | sed 's/^/     | /'; fi
}
