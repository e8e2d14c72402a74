#!/usr/bin/env bash
# Builds the VMM boot tests' initramfs: tests/vm/boot/test_init.zig as a static /init, in a newc
# cpio, unless it is newer than its source. Prints its path.
# Usage: make-initramfs.sh [OUT.cpio]   (default zig-out/vmm-test/initramfs.cpio)
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-zig-out/vmm-test/initramfs.cpio}
if [[ -s $out && $out -nt tests/vm/boot/test_init.zig ]]; then echo "$out"; exit 0; fi
root=$(mktemp -d /tmp/zkrun-vmm-initramfs-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
zig build-exe -target x86_64-linux-none -O ReleaseSmall -fstrip -fsingle-threaded \
  --cache-dir "$PWD/.zig-cache" -femit-bin="$root/init" tests/vm/boot/test_init.zig
rm -f "$root"/init.o
mkdir -p "$(dirname "$out")"
(cd "$root" && echo init | cpio --quiet -o -H newc) > "$out"
echo "$out"
