#!/usr/bin/env bash
# Builds the VMM boot tests' initramfs: tests/vm/boot/test_init.zig as a static /init (`zig build
# test-guests` → zig-out/test-guests/vmm-test-init), in a newc cpio, unless the cpio is newer
# than that binary. Prints its path.
# Usage: make-initramfs.sh [OUT.cpio]   (default zig-out/vmm-test/initramfs.cpio)
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
out=${1:-zig-out/vmm-test/initramfs.cpio}
zig build test-guests --summary none >&2
init=zig-out/test-guests/vmm-test-init
if [[ -s $out && $out -nt $init ]]; then echo "$out"; exit 0; fi
root=$(mktemp -d /tmp/zkrun-vmm-initramfs-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
cp "$init" "$root/init"
mkdir -p "$(dirname "$out")"
(cd "$root" && echo init | cpio --quiet -o -H newc) > "$out"
echo "$out"
