//! Root of the virtqueue fuzzer executable (`zig build fuzz` → zig-out/bin/fuzz-queue). It sits
//! at libkrun-c/ so that the module root covers virtio/ and vmm/GuestMemory.zig; the fuzzer
//! itself is virtio/fuzz_queue.zig.
pub const main = @import("virtio/fuzz_queue.zig").main;
