#!/usr/bin/env bash
# Kernel and libkrunfw figures (BENCHMARKS.md "Kernel and libkrunfw"): warm (cached)
# build-kernel.sh time, vmlinux size (file and PT_LOAD bytes), libkrunfw.so size and its bundle,
# QEMU microvm TCG boot of the vmlinux to the test init's marker. The cold build time is in the
# cache's build-info (printed as a note); it is not re-measured here (~5 min of both cores).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
ms_now() { echo $(($(date +%s%N) / 1000000)); }

vmlinux=$(kernelfw/build-kernel.sh --print-path)
[[ -f $vmlinux ]] || { echo "kernel: no kernel at $vmlinux (make kernel)"; exit 1; }
best=999999
for _ in 1 2 3 4 5; do
  t0=$(ms_now); kernelfw/build-kernel.sh >/dev/null || exit 1; t=$(($(ms_now) - t0))
  ((t < best)) && best=$t
done
echo "kernel_build_warm_ms $best ms"
info=$(dirname "$vmlinux")/build-info
[[ -f $info ]] && echo "# last build of this key (from $info): make $(awk '/^make_seconds/ {print $2}' "$info") s," \
  "total $(awk '/^total_seconds/ {print $2}' "$info") s, -j$(awk '/^jobs/ {print $2}' "$info")"
echo "vmlinux_bytes $(stat -c %s "$vmlinux") bytes"
echo "vmlinux_stripped_bytes $(strip -o /tmp/zkrun-vmlinux.stripped "$vmlinux" && stat -c %s /tmp/zkrun-vmlinux.stripped; rm -f /tmp/zkrun-vmlinux.stripped) bytes"
filesz=0
while read -r hex; do filesz=$((filesz + hex)); done < <(readelf -lW "$vmlinux" | awk '$1 == "LOAD" {print $5}')
echo "vmlinux_pt_load_filesz_bytes $filesz bytes"
lib=zig-out/lib/libkrunfw.so.5.4.0
if [[ -f $lib ]]; then
  echo "libkrunfw_so_bytes $(stat -c %s "$lib") bytes"
  echo "libkrunfw_bundle_bytes $(($(readelf -sW --dyn-syms "$lib" | awk '$8 == "KERNEL_BUNDLE" {print $3; exit}'))) bytes"
else
  echo "kernel: $lib not built (make build)"
fi
# Boot to the test init's marker under QEMU TCG (emulation time; compare only within a run).
out=$(tests/native/kernelfw-qemu-boot.sh 2>&1)
t=$(sed -n 's/^ok   QEMU exited by itself (status 0) in \([0-9.]*\) s$/\1/p' <<<"$out")
[[ -n $t ]] && echo "qemu_tcg_boot_to_init_and_exit_s $t s" || { echo "kernel: boot test failed"; echo "$out" | tail -5; exit 1; }
