//! libkrun.so root: the only file that exports C symbols. Each `krun_*` is a thin shim in
//! capi/ that validates, calls the Zig core, and maps errors to -errno; here every `krun_*`
//! declaration of capi/main.zig's areas becomes a C symbol of the same name.
const std = @import("std");
const capi = @import("capi/main.zig");
const log = @import("log.zig");
const loader = @import("vmm/kernel_loader.zig");

/// std.log of every libkrun-c/ file goes through log.zig, which filters at run time by the
/// level set with krun_set_log_level / krun_init_log (so nothing is filtered out at compile
/// time).
pub const std_options: std.Options = .{
    .log_level = .debug,
    .logFn = log.stdLogFn,
};

comptime {
    // Only when this file is the library's root: a test or tool importing it gets no symbols.
    if (@import("root") == @This()) {
        for (capi.areas) |area| exportArea(area);
        @export(&preload_firmware, .{ .name = "zkrun_preload_firmware", .section = ".init_array", .visibility = .hidden });
    }
}

/// libkrunfw is opened when libkrun.so is loaded, quietly, so that a client which loads us on
/// the host and only then enters a container without libkrunfw still has a kernel: crun 1.8.1
/// dlopens libkrun.so.1 on the host and calls even krun_create_ctx after pivot_root (the
/// libkrun it was built for linked libkrunfw as a dependency). krun_create_ctx and the start
/// try again if it was not found here.
const preload_firmware: *const fn () callconv(.c) void = &preloadFirmware;

fn preloadFirmware() callconv(.c) void {
    _ = loader.Firmware.shared(true) catch {};
}

fn exportArea(comptime area: type) void {
    for (std.meta.declarations(area)) |name| {
        if (!std.mem.startsWith(u8, name, "krun_")) continue;
        // The compiler rejects exporting a function that is not callconv(.c).
        @export(&@field(area, name), .{ .name = name });
    }
}
