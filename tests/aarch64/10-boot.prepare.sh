#!/usr/bin/env bash
# Runs on the machine before the aarch64 test host boots: cross-builds tests/aarch64/boot-harness.zig
# (`zig build aarch64-boot`: it reaches the FDT, layout and arm64 KVM setup of vmm/aarch64/ through
# the zkrun module; a no-op when nothing changed) and copies it into the shared cache as
# aarch64-boot-<hash> (hash = sha256 of its sources, recomputed by the test without Zig), and
# links the Debian arm64 Image the test host itself boots to host/aarch64-debian-Image.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host"
mkdir -p "$dir"
srcs=(tests/aarch64/boot-harness.zig libkrun-c/vmm/ram.zig libkrun-c/vmm/aarch64/Fdt.zig
  libkrun-c/vmm/aarch64/devicetree.zig libkrun-c/vmm/aarch64/layout.zig libkrun-c/vmm/aarch64/kvm_arm.zig)
out="$dir/aarch64-boot-$(cat "${srcs[@]}" | sha256sum | cut -c1-16)"
zig build aarch64-boot --summary none
if [[ ! -x $out ]]; then
  cp zig-out/aarch64-linux/bin/aarch64-boot "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
fi
echo "$out"
image=$(tests/host/aarch64-root.sh | sed -n 's/^kernel //p')
ln -sfn "$image" "$dir/aarch64-debian-Image"
echo "$dir/aarch64-debian-Image -> $image"
