#!/usr/bin/env bash
# Runs inside the test host (tests/host/run; started by tests/bench/blk.bench.sh): the same
# block workload (tests/bench/blk-io.c, O_DIRECT in the guest: sequential 1 MiB and random
# 4 KiB reads and writes, 1 and 4 jobs) on a fresh raw and a fresh qcow2 image, served by
# zkrun's virtio-blk and by QEMU's (microvm, -accel kvm, same kernel, virtio-blk-device,
# cache=writeback, aio=threads: QEMU's defaults). Root filesystems come from virtio-fs in both.
# Inside the test host the numbers are emulation speeds: only the ratios mean anything.
source "$(dirname "$0")/../vm/90-blk-common.sh"
command -v qemu-img >/dev/null || skip "no qemu-img"
KERNEL=$(kernelfw/build-kernel.sh --print-path 2>/dev/null) || skip "no guest kernel"
VIRTIOFSD=/usr/lib/qemu/virtiofsd
[[ -x $VIRTIOFSD ]] || skip "no virtiofsd"
cc -O2 -static -pthread -o "$work/root/blk-io" tests/bench/blk-io.c || { echo "building blk-io failed"; exit 1; }
cat > "$work/root/blkbench.sh" <<'SH'
#!/bin/sh
for m in seqwrite seqread; do for j in 1 4; do /blk-io /dev/vda $m $j 1048576 16; done; done
for m in randwrite randread; do for j in 1 4; do /blk-io /dev/vda $m $j 4096 2; done; done
sync
[ -n "$BB_QEMU" ] && /bin/busybox reboot -f
exit 0
SH
chmod +x "$work/root/blkbench.sh"
cp -a "$work/root" "$work/root2"
image() { rm -f "$work/$1.img"; if [[ $1 == qcow2 ]]; then qemu-img create -q -f qcow2 "$work/$1.img" 128M; else truncate -s 128M "$work/$1.img"; fi; }
for fmt in raw qcow2; do
  image $fmt
  ours=$(vm "$work/root" -disk d "$work/$fmt.img" $fmt 0 /blkbench.sh | tr -d '\r'); rc=$?
  [[ $rc -eq 0 ]] || { echo "zkrun run failed (rc $rc)"; echo "$ours" | tail -20; exit 1; }
  image $fmt
  "$VIRTIOFSD" --socket-path="$work/vfsd.sock" -o source="$work/root2" -o cache=auto -f >"$work/vfsd.log" 2>&1 &
  vfsd=$!
  for _ in $(seq 100); do [[ -S $work/vfsd.sock ]] && break; sleep 0.1; done
  theirs=$(timeout 600 qemu-system-x86_64 -M microvm,acpi=off,memory-backend=mem -accel kvm -cpu host -m 512M -smp 2 \
    -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=512M,share=on -nodefaults -no-user-config -display none -no-reboot \
    -serial stdio -kernel "$KERNEL" -chardev socket,id=vfs,path="$work/vfsd.sock" \
    -device vhost-user-fs-device,chardev=vfs,tag=/dev/root \
    -drive if=none,id=d,file="$work/$fmt.img",format=$fmt,aio=threads -device virtio-blk-device,drive=d \
    -append "console=ttyS0 quiet panic=-1 reboot=t rootfstype=virtiofs root=/dev/root rw init=/blkbench.sh BB_QEMU=1" \
    </dev/null 2>"$work/qemu.log" | tr -d '\r')
  kill "$vfsd" 2>/dev/null; wait "$vfsd" 2>/dev/null; rm -f "$work/vfsd.sock"
  grep -q "^BLK randread.4j" <<<"$theirs" || { echo "QEMU run failed"; echo "$theirs" | tail -20; tail -n 20 "$work/qemu.log"; exit 1; }
  while read -r _ name mibs _ iops _; do
    other=$(awk -v n="$name" '$1 == "BLK" && $2 == n {print $3 " MiB/s " $5 " IOPS"}' <<<"$theirs")
    echo "guest.$fmt.$name.zkrun $mibs MiB/s $iops IOPS"
    echo "guest.$fmt.$name.qemu ${other:-NaN}"
  done < <(grep '^BLK ' <<<"$ours")
done
