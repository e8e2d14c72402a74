#!/usr/bin/env bash
# libkrunfw.5.dylib for macOS (issue 16): `zig build -Dtarget=aarch64-macos -Dkernel-aarch64=Image`
# bundles our aarch64 kernel as libkrun expects on macOS. Checked here: an arm64 Mach-O dylib,
# install name libkrunfw.5.dylib (the name libkrun.1.dylib dlopens), linking only libSystem,
# exporting libkrunfw's two functions, and holding the Image's bytes. Run by the aarch64 tier of
# tests/run.sh after the aarch64 kernel is built (the native tier cannot wait for it); nothing
# here can load the dylib: a Mac is needed for that (docs/HVF.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
image=$(kernelfw/build-kernel.sh --arch aarch64 --print-path) || { echo "FAIL: no aarch64 kernel"; echo "0 passed, 1 failed"; exit 1; }
work=$(mktemp -d /tmp/zkrun-cross-krunfw.XXXXXX)
trap 'rm -rf "$work"' EXIT
p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }

if zig build -Dtarget=aarch64-macos -Dkernel-aarch64="$image" --prefix "$work" --summary none >"$work/build.log" 2>&1; then
  ok "zig build -Dtarget=aarch64-macos -Dkernel-aarch64=$image"
else
  bad "zig build -Dtarget=aarch64-macos -Dkernel-aarch64:"; sed 's/^/    /' "$work/build.log" | head -40
fi
fw=$work/lib/libkrunfw.5.dylib
if [[ ! -f $fw ]]; then bad "no libkrunfw.5.dylib was built"; echo "$p passed, $f failed"; exit 1; fi
source tests/native/lib/macho.sh
macho_dylib "$fw" libkrunfw.5.dylib
exported=$(llvm-nm -gU "$fw" 2>/dev/null | awk '$2 == "T" {print $3}' | sed 's/^_//' | sort | tr '\n' ' ')
[[ $exported == "krunfw_get_kernel krunfw_get_version " ]] && ok "exports krunfw_get_kernel and krunfw_get_version" || bad "exports: $exported"
# The bundle holds the Image: its first MiB (header, text) is in the dylib's data, byte for byte.
if python3 - "$image" "$fw" <<'EOF'
import sys
image = open(sys.argv[1], 'rb').read(1 << 20)
sys.exit(0 if len(image) == 1 << 20 and image in open(sys.argv[2], 'rb').read() else 1)
EOF
then ok "the Image's first MiB is in libkrunfw.5.dylib"; else bad "the Image's bytes are not in libkrunfw.5.dylib"; fi
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
