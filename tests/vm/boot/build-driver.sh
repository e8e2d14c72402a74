#!/usr/bin/env bash
# Builds tests/vm/boot/vmm_driver.zig into $1 (default zig-out/vmm-test/vmm_driver), unless it is
# newer than every source it depends on. Prints its path.
# A Zig module may only import files under its root's directory, so the driver is compiled in a
# fixed scratch directory (zig-out/vmm-test/src, beside a symlink to libkrun-c/): nothing is
# copied into the tree, and the fixed path keeps Zig's cache warm, which matters inside the
# test host, where compiling runs under TCG.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${1:-zig-out/vmm-test/vmm_driver}
if [[ -x $out && -z $(find libkrun-c tests/vm/boot/vmm_driver.zig -newer "$out" -name '*.zig' | head -1) ]]; then
  echo "$out"; exit 0
fi
src=zig-out/vmm-test/src
mkdir -p "$src" "$(dirname "$out")"
ln -sfn "$PWD/libkrun-c" "$src/libkrun-c"
cp tests/vm/boot/vmm_driver.zig "$src/"
# -mcpu=baseline: it runs in the test host, whose emulated CPU lacks this machine's AVX-512.
# The VMM imports the named modules guest_memory, init_protocol, kernel_elf and sys_errno (as
# build.zig defines them).
zig build-exe -lc -mcpu=baseline --cache-dir "$PWD/.zig-cache" -femit-bin="$out" \
  -O ReleaseSafe --dep guest_memory --dep init_protocol --dep kernel_elf --dep sys_errno -Mroot="$src/vmm_driver.zig" \
  -O ReleaseSafe -Mguest_memory=libkrun-c/memory/GuestMemory.zig \
  -O ReleaseSafe -Minit_protocol=libkrun-c/protocol/init.zig \
  -O ReleaseSafe -Mkernel_elf=libkrun-c/elf.zig \
  -O ReleaseSafe -Msys_errno=libkrun-c/sys/errno.zig 2>&1
echo "$out"
