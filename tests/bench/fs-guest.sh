#!/usr/bin/env bash
# Runs inside the test host (tests/host/run; started by tests/bench/fs.bench.sh): the same file
# workload in a guest whose root is served by zkrun's in-process virtio-fs server, and in a QEMU
# microVM (-accel kvm, same kernel) whose root is served by Debian's virtiofsd over vhost-user.
# Times come from the guest's /proc/uptime (10 ms); inside the test host they are emulation
# times, so only the ratio between the two means anything.
source "$(dirname "$0")/../vm/30-fs-common.sh"
KERNEL=$(kernelfw/build-kernel.sh --print-path 2>/dev/null) || skip "no guest kernel"
VIRTIOFSD=/usr/lib/qemu/virtiofsd
cat > "$work/root/fsbench.sh" <<'SH'
#!/bin/sh
[ -n "$FSB_QEMU" ] && /bin/busybox mount -t proc proc /proc
cs() { read u _ < /proc/uptime; echo $(( ${u%.*} * 100 + 1${u#*.} - 100 )); }
mkdir -p /b
t0=$(cs); i=0; while [ $i -lt 300 ]; do echo x > /b/f$i; i=$((i+1)); done
t1=$(cs); ls -l /b > /dev/null
t2=$(cs); i=0; while [ $i -lt 300 ]; do [ -e /b/f$i ] && [ -e /b/nope$i ]; i=$((i+1)); done
t3=$(cs); rm -r /b
t4=$(cs); cat /big > /dev/null
t5=$(cs)
echo "FSB create_300_files $(( (t1 - t0) * 10 ))"
echo "FSB ls_l_300 $(( (t2 - t1) * 10 ))"
echo "FSB stat_600_cached_or_negative $(( (t3 - t2) * 10 ))"
echo "FSB rm_300 $(( (t4 - t3) * 10 ))"
echo "FSB read_32MiB $(( (t5 - t4) * 10 ))"
echo "FSB total $(( (t5 - t0) * 10 ))"
sync
[ -n "$FSB_QEMU" ] && /bin/busybox reboot -f
exit 0
SH
chmod +x "$work/root/fsbench.sh"
head -c 33554432 /dev/urandom > "$work/root/big"
cp -a "$work/root" "$work/root2"

ours=$(vm "$work/root" /fsbench.sh | tr -d '\r'); rc=$?
[[ $rc -eq 0 ]] || { echo "zkrun run failed (rc $rc)"; echo "$ours" | tail -20; exit 1; }
grep '^FSB ' <<<"$ours" | sed 's/^FSB /zkrun: /'

"$VIRTIOFSD" --socket-path="$work/vfsd.sock" -o source="$work/root2" -o cache=auto -f >"$work/vfsd.log" 2>&1 &
vfsd=$!
for _ in $(seq 100); do [[ -S $work/vfsd.sock ]] && break; sleep 0.1; done
theirs=$(timeout 150 qemu-system-x86_64 -M microvm,acpi=off,memory-backend=mem -accel kvm -cpu host -m 256M -smp 1 \
  -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=256M,share=on -nodefaults -no-user-config -display none -no-reboot \
  -serial stdio -kernel "$KERNEL" -chardev socket,id=vfs,path="$work/vfsd.sock" \
  -device vhost-user-fs-device,chardev=vfs,tag=/dev/root \
  -append "console=ttyS0 quiet panic=-1 reboot=t rootfstype=virtiofs root=/dev/root rw init=/fsbench.sh FSB_QEMU=1" \
  </dev/null 2>"$work/qemu.log" | tr -d '\r')
kill "$vfsd" 2>/dev/null; wait "$vfsd" 2>/dev/null
grep -q "^FSB total" <<<"$theirs" || {
  echo "QEMU + virtiofsd run failed"; echo "$theirs" | tail -30
  for f in qemu.log vfsd.log; do echo "--- $f"; tail -n 20 "$work/$f"; done; exit 1; }

while read -r _ name ms; do
  other=$(awk -v n="$name" '$1 == "FSB" && $2 == n {print $3}' <<<"$theirs")
  echo "guest.$name.zkrun $ms ms"
  echo "guest.$name.virtiofsd ${other:-NaN} ms"
done < <(grep '^FSB ' <<<"$ours")
