//! Tier-1 aggregator: every file with tests is pulled in here (`zig build test`).
//! Add one line per file; keep the list sorted by directory.
comptime {
    _ = @import("Config.zig");
    _ = @import("virtio/Device.zig");
    _ = @import("vmm/GuestMemory.zig");
    _ = @import("vmm/Machine.zig");
}
