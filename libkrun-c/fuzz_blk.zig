//! Root of the virtio-blk fuzzer executable (`zig build fuzz` → zig-out/bin/fuzz-blk). It sits
//! at libkrun-c/ so that the module root covers virtio/ and vmm/GuestMemory.zig; the fuzzer
//! itself is virtio/blk/fuzz.zig.
pub const main = @import("virtio/blk/fuzz.zig").main;
/// Guest-caused warnings (broken queues, corrupt images) are the expected outcome here.
pub const std_options: @import("std").Options = .{ .log_level = .err };
