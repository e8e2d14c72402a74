#!/usr/bin/env bash
# Builds the VMM boot tests' initramfs: tests/vm/boot/test_init.zig as a static /init, in a newc
# cpio. Prints its path. Usage: make-initramfs.sh [OUT.cpio]
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-/tmp/zkrun-vmm-initramfs/initramfs.cpio}
root=$(mktemp -d /tmp/zkrun-vmm-initramfs-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
zig build-exe -target x86_64-linux-none -O ReleaseSmall -fstrip -fsingle-threaded \
  --cache-dir "$PWD/.zig-cache" -femit-bin="$root/init" tests/vm/boot/test_init.zig
rm -f "$root"/init.o
mkdir -p "$(dirname "$out")"
(cd "$root" && echo init | cpio --quiet -o -H newc) > "$out"
echo "$out"
