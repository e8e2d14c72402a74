#!/usr/bin/env bash
# libkrun's own path end to end through the VMM: libkrunfw.so.5 dlopen'ed and its bundle mapped
# into the guest (no krun_set_kernel), libkrun's cmdline prolog, a virtio-fs root with
# /init.krun served from memory, the exec config on the cmdline; the workload's exit status
# travels back by the FUSE exit-code ioctl and the i8042 reset to wait(); the kernel's slot is
# in KVM's page tables before the guest runs.
source "$(dirname "$0")/boot/common.sh"
fw=zig-out/lib/libkrunfw.so.5
init=zig-out/bin/init.krun
[[ -e $fw ]] || skip "no $fw (make build)"
[[ -e $init ]] || skip "no $init (make build)"
root=$(mktemp -d /tmp/zkrun-vm14-root.XXXXXX)
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/" && ln -s busybox "$root/bin/sh" && ln -s busybox "$root/bin/cat"
out=/tmp/zkrun-vm14.out; : > $out
o=$(LD_LIBRARY_PATH=$PWD/zig-out/lib $DRV boot --format fw --root "$root" --init "$init" --exec /bin/sh \
      --arg -c --arg "echo hello from the workload; cat /proc/cmdline; exit 7" \
      --vcpus 2 --mem 256 --console-output $out --timeout-ms 300000 2>&1); rc=$?
echo "$o"
con=$(tr -d '\r' < $out)
expect "the workload's exit status 7 reached wait()" '[[ $rc -eq 7 && $o == *"boot: exit=7"* ]]' "$o"
expect "the workload printed through hvc0" 'grep -q "hello from the workload" <<<"$con"' "$con"
# The test host's KVM (Linux 6.12, nested paging) has KVM_PRE_FAULT_MEMORY: the bundle's slot is
# mapped before the guest runs (builder.zig preFaultKernel), all of it.
pf=$(sed -n 's/.*kernel_prefaulted_kb=\([0-9]*\).*/\1/p' <<<"$o")
expect "the kernel slot was pre-faulted ($pf KiB, the bundle is several MiB)" '[[ -n $pf && $pf -gt 4096 ]]' "$o"
expect "libkrun's prolog (reboot=k with panic_warm: panics are told apart), 5 devices (balloon rng console fs vsock), tsi_hijack, exec tokens last" \
  'grep -q "^reboot=k,panic_warm panic=-1 panic_print=0 nomodule console=hvc0 rootfstype=virtiofs rw quiet no-kvmapf init=/init.krun virtio_mmio.device=4K@0xd0000000:5 .*virtio_mmio.device=4K@0xd0004000:9 tsi_hijack KRUN_INIT=/bin/sh -- " <<<"$con"' "$con"
rm -rf "$root"
[[ $fails -eq 0 ]]
