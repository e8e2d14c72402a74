#!/usr/bin/env bash
# The FUSE request mix behind compare.bench.sh's file workloads (issue 15: where does the time
# go), zkrun vs QEMU + Debian's virtiofsd, in one test-host boot. Not part of `make bench` (run it
# by hand: tests/bench/fs-mix.sh). Three guest runs per side, compare/fsb.c with: (A) untar of a
# tree without rm, (B) untar then `rm -rf`, (C) sequential write + fsync and cold read of a file.
# B − A is the `rm -rf`'s own mix. zkrun counts with ZKRUN_FS_STATS=1 (virtio/fs/Stats.zig: per
# opcode count/server µs, worker wakes, interrupts); virtiofsd with -d (its per-request log).
# Knobs: FS_MIX_TREE (files in the tree, 100), FS_MIX_MIB (16).
set -uo pipefail
cd "$(dirname "$0")/../.."
cache=${ZKRUN_CACHE:-$HOME/.cache/zkrun}/bench
tree=${FS_MIX_TREE:-100} mib=${FS_MIX_MIB:-16}
if [[ ${FS_MIX_INSIDE:-} != 1 ]]; then
  [[ -e zig-out/lib/libkrun.so.1 ]] || { echo "fs-mix: zkrun not built"; exit 1; }
  mkdir -p "$cache"
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$cache/krun-bench" tests/bench/compare/krun-bench.c -ldl -lpthread || exit 1
  cc -static -O2 -Wall -Wextra -o "$cache/fsb" tests/bench/compare/fsb.c || exit 1
  tar_file=$cache/tree-$tree.tar
  if [[ ! -s $tar_file ]]; then
    t=$(mktemp -d); for ((i = 0; i < tree; i++)); do
      d=$t/tree/d$((i / 100)); [[ -d $d ]] || mkdir -p "$d"; printf '%0100d' "$i" >"$d/f$i"; done
    tar -C "$t" -cf "$tar_file.tmp" tree && mv "$tar_file.tmp" "$tar_file"; rm -rf "$t"
  fi
  rootfs=$(tests/native/capi/vm-build.sh | sed -n 's/^rootfs=//p')
  exec tests/host/run --timeout "${FS_MIX_TIMEOUT:-1800}" env FS_MIX_INSIDE=1 ROOTFS="$rootfs" TAR_FILE="$tar_file" \
    FS_MIX_TREE="$tree" FS_MIX_MIB="$mib" "$0"
fi

KERNEL=$(kernelfw/build-kernel.sh --print-path 2>/dev/null)
VIRTIOFSD=/usr/lib/qemu/virtiofsd
export LD_LIBRARY_PATH=$PWD/zig-out/lib
work=$(mktemp -d /tmp/zkrun-fsmix.XXXXXX); trap 'rm -rf "$work"' EXIT
targ=/$(basename "$TAR_FILE")
declare -A args=([A]="/results 0 $targ 0 0" [B]="/results 0 $targ 0 0" [C]="/results 0 - $mib 0")
declare -A envs=([A]="FSB_KEEP_TREE=1" [B]="FSB_X=1" [C]="FSB_NO_RANDOM=1")
fresh() { rm -rf "$work/root"; cp -a "$ROOTFS" "$work/root"; cp "$cache/fsb" "$TAR_FILE" "$work/root/"; }
for r in A B C; do
  fresh
  ZKRUN_FS_STATS=1 KRUN_BENCH_OUT=$work/out timeout 1200 "$cache/krun-bench" "$PWD/zig-out/lib/libkrun.so.1" 1 512 \
    "$work/root" /bin/sh -c "${envs[$r]} exec /fsb ${args[$r]}" </dev/null >/dev/null 2>"$work/err"
  echo "zkrun $r: $(tr '\n' ' ' <"$work/root/results")"
  grep '^virtio-fs stats' "$work/err" | sed "s/^/zkrun $r: /"
done
for r in A B C; do
  fresh
  printf '#!/bin/sh\nexport %s\n/fsb %s\n/bin/busybox reboot -f\n' "${envs[$r]}" "${args[$r]}" >"$work/root/run.sh"
  chmod +x "$work/root/run.sh"
  "$VIRTIOFSD" --socket-path="$work/vfsd.sock" -o source="$work/root" -o cache=auto -d >"$work/vfsd.log" 2>&1 &
  vfsd=$!
  for _ in $(seq 200); do [[ -S $work/vfsd.sock ]] && break; sleep 0.05; done
  timeout 1200 qemu-system-x86_64 -M microvm,acpi=off,memory-backend=mem -accel kvm -cpu host -m 512M -smp 1 \
    -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=512M,share=on -nodefaults \
    -no-user-config -display none -no-reboot -serial file:"$work/console" -kernel "$KERNEL" \
    -chardev socket,id=vfs,path="$work/vfsd.sock" -device vhost-user-fs-device,chardev=vfs,tag=/dev/root \
    -append "console=ttyS0 quiet panic=-1 reboot=t rootfstype=virtiofs root=/dev/root rw init=/run.sh" </dev/null >/dev/null 2>&1
  for _ in $(seq 100); do kill -0 "$vfsd" 2>/dev/null || break; sleep 0.05; done
  kill "$vfsd" 2>/dev/null; wait "$vfsd" 2>/dev/null; rm -f "$work/vfsd.sock"
  echo "qemu $r: $(tr '\n' ' ' <"$work/root/results")"
  echo "qemu $r: virtiofsd requests: $(grep -o 'opcode: [A-Z_0-9]*' "$work/vfsd.log" | awk '{c[$2]++} END {for (k in c) printf "%s=%d ", k, c[k]}')"
  echo "qemu $r: INIT reply: $(grep -A12 'INIT: 7' "$work/vfsd.log" | tr '\n' ' ' | head -c 900)"
  if [[ $r == C ]]; then
    echo "qemu C: read sizes: $(grep -o 'lo_read(ino=[0-9]*, size=[0-9]*' "$work/vfsd.log" | sed 's/.*size=//' | sort -n | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
    echo "qemu C: write sizes: $(grep -o 'lo_write_buf(ino=[0-9]*, size=[0-9]*' "$work/vfsd.log" | sed 's/.*size=//' | sort -n | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
  fi
  grep -m3 -i 'readdirplus\|writeback\|max_write\|max_pages' "$work/vfsd.log" | sed "s/^/qemu $r: vfsd: /"
done
