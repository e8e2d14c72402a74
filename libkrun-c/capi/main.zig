//! The C API's files, one per area. root.zig exports every `krun_*` declaration of each of
//! them; the native test capi-symbols checks that this set equals include/libkrun.h's, and
//! `zig build test` that each shim's parameter and return types match the header's prototype
//! (tests/zig/capi_prototypes.zig).
pub const areas = .{
    @import("context.zig"),
    @import("logging.zig"),
    @import("vm.zig"),
    @import("fs.zig"),
    @import("disks.zig"),
    @import("workload.zig"),
    @import("vsock.zig"),
    @import("net.zig"),
    @import("unsupported.zig"),
};

test {
    inline for (areas) |area| _ = area;
    _ = @import("contexts.zig");
    _ = @import("cstr.zig");
    _ = @import("errors.zig");
    _ = @import("host.zig");
    _ = @import("kernel_image.zig");
}
