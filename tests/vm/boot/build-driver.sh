#!/usr/bin/env bash
# Builds tests/vm/boot/vmm_driver.zig into $1 (default /tmp/zkrun-vmm-driver/vmm_driver).
# A Zig module may only import files under its root's directory, so the driver is compiled in a
# scratch directory beside a symlink to libkrun-c/ (nothing is copied or committed).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-/tmp/zkrun-vmm-driver/vmm_driver}
dir=$(mktemp -d /tmp/zkrun-vmm-driver-src.XXXXXX)
trap 'rm -rf "$dir"' EXIT
ln -s "$PWD/libkrun-c" "$dir/libkrun-c"
cp tests/vm/boot/vmm_driver.zig "$dir/"
mkdir -p "$(dirname "$out")"
zig build-exe -lc -O ReleaseSafe --cache-dir "$PWD/.zig-cache" -femit-bin="$out" "$dir/vmm_driver.zig" 2>&1
echo "$out"
