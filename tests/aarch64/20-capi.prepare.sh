#!/usr/bin/env bash
# Runs on the machine before the aarch64 test host boots: cross-builds zkrun for aarch64-linux
# (`zig build -Dtarget=aarch64-linux-gnu`: libkrun.so.1 with its aarch64 /init.krun, and
# libkrunfw.so.5 bundling our aarch64 Image from `kernelfw/build-kernel.sh --arch aarch64
# --print-path`) and tests/aarch64/capi-run.c against it, into the shared cache's host/aarch64-capi/
# (lib/, bin/capi-run), and the Image gzipped (Image.gz: krun_set_kernel IMAGE_GZ). Without a
# built aarch64 Image (make kernel-aarch64, ~25 min cold) it
# leaves host/aarch64-capi/NO-KERNEL, and 20-capi says it could not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
out="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/aarch64-capi"
rm -rf "$out"
mkdir -p "$out/bin"
image=$(kernelfw/build-kernel.sh --arch aarch64 --print-path)
if [[ ! -f $image ]]; then
  echo "no aarch64 Image at $image (make kernel-aarch64)" | tee "$out/NO-KERNEL"
  exit 0
fi
zig build -Dtarget=aarch64-linux-gnu -Dkernel-aarch64="$image" --prefix "$out" --summary none
zig cc -target aarch64-linux-gnu -std=gnu11 -Wall -Wextra -Werror -O2 -Iinclude -o "$out/bin/capi-run" \
  tests/aarch64/capi-run.c -L"$out/lib" -lkrun -Wl,--disable-new-dtags,-rpath,'$ORIGIN/../lib'
gzip -6n -c "$image" >"$out/Image.gz"
echo "$out: $(cd "$out" && ls lib/libkrun.so.1 lib/libkrunfw.so.5 bin/capi-run bin/init.krun Image.gz | tr '\n' ' ')"
