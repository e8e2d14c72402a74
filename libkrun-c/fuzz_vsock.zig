//! Root of the vsock/TSI fuzzer executable (`zig build fuzz` → zig-out/bin/fuzz-vsock). It sits
//! at libkrun-c/ so that the module root covers virtio/, vmm/ and tsi/; the fuzzer itself is
//! virtio/vsock/fuzz.zig.
pub const main = @import("virtio/vsock/fuzz.zig").main;
