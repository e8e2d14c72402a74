//! libkrun.so root: the only file that exports C symbols. Each `krun_*` is a thin shim in
//! capi/ that validates, calls the Zig core, and maps errors to -errno; here every `krun_*`
//! declaration of capi/main.zig's areas becomes a C symbol of the same name.
const std = @import("std");
const capi = @import("capi/main.zig");
const log = @import("log.zig");
const loader = @import("vmm/kernel_loader.zig");
const macos = @import("capi/macos.zig");
const is_macos = @import("builtin").os.tag == .macos;

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
        @export(&preload_firmware, .{ .name = "zkrun_preload_firmware", .section = init_section, .visibility = .hidden });
    }
}

/// The loader's constructor list: ELF's .init_array, Mach-O's __mod_init_func.
const init_section = if (@import("builtin").os.tag == .macos) "__DATA,__mod_init_func" else ".init_array";

/// libkrunfw is opened when libkrun.so is loaded (which also pins this library: `pinSelf`), quietly, so that a client which loads us on
/// the host and only then enters a container without libkrunfw still has a kernel: crun 1.8.1
/// dlopens libkrun.so.1 on the host and calls even krun_create_ctx after pivot_root (the
/// libkrun it was built for linked libkrunfw as a dependency). krun_create_ctx and the start
/// try again if it was not found here.
const preload_firmware: *const fn () callconv(.c) void = &preloadFirmware;

fn preloadFirmware() callconv(.c) void {
    pinSelf();
    _ = loader.Firmware.shared(true) catch {};
}

/// The library stays mapped until the process exits, even after dlclose (RTLD_NODELETE, what
/// `-z nodelete` would do; Zig's linker has no such flag): a running VM's threads and the
/// signal handlers it installs (SIGRTMIN, SIGWINCH) run this library's code. Deno closes its
/// FFI libraries when a script ends with an uncaught error, and with VMs running the process
/// then died of SIGSEGV at an unmapped libkrun address instead of reporting the error.
fn pinSelf() void {
    const path = loader.libraryPath() orelse return;
    // NOLOAD: only marks the copy already loaded (this one); never loads a second.
    _ = std.c.dlopen(path, .{ .NOW = true, .NOLOAD = true, .NODELETE = true });
}

fn exportArea(comptime area: type) void {
    @setEvalBranchQuota(100_000);
    for (std.meta.declarations(area)) |name| {
        if (!std.mem.startsWith(u8, name, "krun_")) continue;
        // macOS: what needs a Linux-only facility answers -ENOTSUP (capi/macos.zig).
        if (comptime is_macos and macos.isUnsupported(name)) {
            @export(&macos.Stub(name).call, .{ .name = name });
            continue;
        }
        // The compiler rejects exporting a function that is not callconv(.c).
        @export(&@field(area, name), .{ .name = name });
    }
}
