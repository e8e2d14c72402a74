#!/usr/bin/env bash
# Tidy: no assert, `unreachable` or @panic on guest-controlled values. In the files that decode
# what a guest sends (virtqueues, the MMIO transport, the devices (fs with its FUSE server,
# vsock, blk, net), TSI, the init's DHCP client, the legacy port devices, vCPU exits, the event
# loop, guest memory, the Machine (with its builder, device manager, slots and arch backend) that ends a
# VM from what its guest did, the C API that reports it, the init configuration protocol), every
# such line must carry a "tidy: <why the value is not the guest's>" comment; anything the guest
# controls is validated and answered with an error instead. Test blocks, comptime blocks and
# test-only files are exempt. Prints each offending line and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
files=(libkrun-c/virtio/*.zig libkrun-c/virtio/*/*.zig libkrun-c/tsi/*.zig libkrun-c/init/dhcp.zig libkrun-c/vmm/legacy/*.zig
  libkrun-c/vmm/Vcpu.zig libkrun-c/vmm/MmioBus.zig libkrun-c/vmm/EventLoop.zig
  libkrun-c/memory/GuestMemory.zig libkrun-c/vmm/Machine.zig libkrun-c/vmm/builder.zig libkrun-c/vmm/DeviceManager.zig libkrun-c/vmm/DeviceSlots.zig
  libkrun-c/vmm/x86_64/arch.zig libkrun-c/vmm/aarch64/arch.zig libkrun-c/vmm/hvf/*.zig libkrun-c/capi/*.zig
  libkrun-c/protocol/init.zig libkrun-c/protocol/decode.zig)
bad=0 checked=0
for f in "${files[@]}"; do
  case $(basename "$f") in *_tests.zig | testing.zig) continue ;; esac # test-only (CONTRIBUTING.md: naming)
  checked=$((checked + 1))
  # Skip top-level `test "..." {` and `comptime {` blocks (zig fmt closes them with "}" at
  # column 0); strip // comments before matching, but honour a "tidy:" marker in them.
  out=$(awk '
    /^(test "|comptime \{)/ { skip = 1; next }
    skip { if ($0 ~ /^}/) skip = 0; next }
    {
      code = $0; sub(/\/\/.*/, "", code)
      if (code ~ /(^|[^A-Za-z0-9_])(assert\(|unreachable|@panic\()/ && $0 !~ /tidy: [^ ]/)
        printf "%s:%d: %s\n", FILENAME, FNR, $0
    }' "$f")
  if [[ -n $out ]]; then echo "$out"; bad=$((bad + $(wc -l <<<"$out"))); fi
done
echo "tidy: $checked files checked, $bad unmarked assert/unreachable/@panic lines"
if [[ $bad -eq 0 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; exit 1; fi
